"""Notebook 02's generated answers are reused only when everything that decides them is unchanged."""
import pandas as pd

from ohlora_utils import evaluation_cache
from ohlora_utils.evaluation_cache import cached_frame
from ohlora_utils.provenance import FORCE_ENV


def counting(frame):
    calls = []

    def compute():
        calls.append(1)
        return frame.copy()
    return compute, calls


def test_a_frame_is_computed_once_then_reused_while_its_inputs_match(tmp_path, capsys):
    frame = pd.DataFrame({"answer": ["응 좋아!", ""], "tries": [1, 3], "fell_back": [False, True],
                          "weekday": ["토요일", None], "seconds": [0.125, 1 / 3]})
    compute, calls = counting(frame)
    first, reused = cached_frame("summary", {"adapter": "a1", "seed": 0}, compute, tmp_path)
    assert "computing summary (nothing trained yet)" in capsys.readouterr().out
    again, reused_again = cached_frame("summary", {"adapter": "a1", "seed": 0}, compute, tmp_path)
    assert (reused, reused_again, len(calls)) == (False, True, 1)
    # empty answers stay empty strings, a missing weekday stays missing, flags booleans, numbers exact
    assert again.equals(first) and (again.dtypes == first.dtypes).all()
    assert again["answer"].tolist() == ["응 좋아!", ""] and again["weekday"].isna().tolist() == [False, True]
    assert again["seconds"].tolist() == [0.125, 1 / 3]


def test_an_empty_frame_keeps_its_columns(tmp_path):
    compute, _ = counting(pd.DataFrame({"rank": pd.Series([], dtype=int)}))
    cached_frame("ranks", {"adapter": "a1"}, compute, tmp_path)
    assert list(cached_frame("ranks", {"adapter": "a1"}, compute, tmp_path)[0].columns) == ["rank"]


def test_other_inputs_a_damaged_stamp_or_force_compute_again(tmp_path, monkeypatch, capsys):
    compute, calls = counting(pd.DataFrame({"rank": [1, 2]}))
    cached_frame("ranks", {"adapter": "a1"}, compute, tmp_path)
    assert not cached_frame("ranks", {"adapter": "a2"}, compute, tmp_path)[1]     # another adapter
    assert "changed since: inputs.adapter" in capsys.readouterr().out
    (tmp_path / "ranks.meta.json").write_text("{not json", encoding="utf-8")
    assert not cached_frame("ranks", {"adapter": "a2"}, compute, tmp_path)[1]     # unreadable stamp
    (tmp_path / "ranks.frame.json").write_text("[1, 2", encoding="utf-8")
    assert not cached_frame("ranks", {"adapter": "a2"}, compute, tmp_path)[1]     # damaged frame
    monkeypatch.setenv(FORCE_ENV, "1")
    assert not cached_frame("ranks", {"adapter": "a2"}, compute, tmp_path)[1]     # make reproduce FORCE=1
    assert len(calls) == 5


def test_the_default_folder_is_inside_the_artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("OHLORA_ARTIFACTS_DIR", str(tmp_path))
    assert evaluation_cache.cache_dir() == tmp_path / evaluation_cache.CACHE_DIR_NAME
