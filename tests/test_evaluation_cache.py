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


def test_a_frame_is_computed_once_then_reused_while_its_inputs_match(tmp_path):
    frame = pd.DataFrame({"answer": ["응 좋아!", ""], "tries": [1, 3], "fell_back": [False, True]})
    compute, calls = counting(frame)
    first, reused = cached_frame("summary", {"adapter": "a1", "seed": 0}, compute, tmp_path)
    again, reused_again = cached_frame("summary", {"adapter": "a1", "seed": 0}, compute, tmp_path)
    assert (reused, reused_again, len(calls)) == (False, True, 1)
    assert again.equals(first)     # empty answers stay empty strings, flags stay booleans


def test_other_inputs_a_damaged_stamp_or_force_compute_again(tmp_path, monkeypatch):
    compute, calls = counting(pd.DataFrame({"rank": [1, 2]}))
    cached_frame("ranks", {"adapter": "a1"}, compute, tmp_path)
    assert not cached_frame("ranks", {"adapter": "a2"}, compute, tmp_path)[1]     # another adapter
    (tmp_path / "ranks.json").write_text("{not json", encoding="utf-8")
    assert not cached_frame("ranks", {"adapter": "a2"}, compute, tmp_path)[1]     # unreadable stamp
    monkeypatch.setenv(FORCE_ENV, "1")
    assert not cached_frame("ranks", {"adapter": "a2"}, compute, tmp_path)[1]     # make reproduce FORCE=1
    assert len(calls) == 4


def test_the_default_folder_is_inside_the_artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("OHLORA_ARTIFACTS_DIR", str(tmp_path))
    assert evaluation_cache.cache_dir() == tmp_path / evaluation_cache.CACHE_DIR_NAME
