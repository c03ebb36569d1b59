"""Blind grading: the sheet hides what made each reply, grades are validated, figures come from the key."""
import importlib.util

import pandas as pd
import pytest

from ohlora_utils import grading
from ohlora_utils.data import DataValidationError
from ohlora_utils.errors import OhloraError
from ohlora_utils.paths import PROJECT_ROOT


def replies(prefix, n=6):
    return pd.DataFrame({"id": [f"e{i}" for i in range(n)], "kind": ["reaction", "greeting"] * (n // 2),
                         "message": [f"메시지 {i}" for i in range(n)], "reply": [f"{prefix} 답 {i}" for i in range(n)]})


@pytest.fixture
def graded_set(tmp_path):
    sheet, key = grading.draw({"alpha7": replies("옛"), "beta9": replies("새")}, n=4, seed=1)
    grading.write_set(tmp_path, sheet, key)
    new_items = set(key.loc[key["recipe"] == "beta9", "item"])
    for grader, new_grade in (("a", 2), ("b", 1)):
        grades = pd.DataFrame({"item": key["item"], "grade": [new_grade if i in new_items else 0 for i in key["item"]],
                               "note": ""})
        grades.to_csv(tmp_path / f"grades_{grader}.csv", index=False)
    return tmp_path, key


def test_the_sheet_shows_message_and_reply_only_in_a_shuffled_order():
    sheet, key = grading.draw({"alpha7": replies("옛"), "beta9": replies("새")}, n=4, seed=1)
    assert list(sheet.columns) == ["item", "message", "reply"] and len(sheet) == 8
    assert key["recipe"].value_counts().to_dict() == {"alpha7": 4, "beta9": 4}
    assert list(key["recipe"]) != sorted(key["recipe"]) and list(key["recipe"]) != sorted(key["recipe"], reverse=True)
    assert (sheet["item"] == key["item"]).all()


def test_drawing_more_than_a_recipe_has_is_a_clear_error():
    with pytest.raises(OhloraError, match="fewer than"):
        grading.draw({"old": replies("옛", n=2)}, n=4)


def test_a_set_is_never_overwritten(graded_set):
    folder, _ = graded_set
    with pytest.raises(OhloraError, match="already holds"):
        grading.write_set(folder, *grading.draw({"x": replies("x")}, n=2))


def test_figures_per_recipe_and_grader_and_their_agreement(graded_set):
    folder, _ = graded_set
    tables = grading.grade_tables(folder)
    by = tables["grades by recipe"].set_index(["recipe", "grader"])
    assert by.loc[("beta9", "a"), "graded 2 %"] == 100.0 and by.loc[("beta9", "b"), "graded 1 %"] == 100.0
    assert by.loc[("alpha7", "a"), "graded 0 %"] == 100.0
    agreement = tables["agreement between graders"].iloc[0]
    assert agreement["same grade %"] == 50.0 and agreement["within one %"] == 100.0


def test_cohen_kappa_by_hand():
    first, second = pd.Series([2, 2, 1, 0]), pd.Series([2, 1, 1, 0])
    # observed 3/4; chance = .5*.25 + .25*.5 + .25*.25 = .3125; kappa = (.75-.3125)/(1-.3125)
    assert grading.cohen_kappa(first, second) == pytest.approx(0.636, abs=1e-3)
    assert grading.cohen_kappa(first, first) == 1.0


def test_bad_grades_are_named_by_row_and_column(graded_set):
    folder, key = graded_set
    (folder / "grades_c.csv").write_text(f"item,grade,note\n{key['item'][0]},3,\ng9999,1,\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as error:
        grading.load_grades(folder, "c")
    assert {(p.line, p.column) for p in error.value.problems} == {(2, "grade"), (3, "item")}


def test_unfinished_grades_are_not_scored(graded_set):
    folder, key = graded_set
    (folder / "grades_c.csv").write_text(f"item,grade,note\n{key['item'][0]},2,\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="not graded yet"):
        grading.grade_tables(folder)


def test_grading_in_the_terminal_saves_each_answer_and_resumes(graded_set, monkeypatch, capsys):
    folder, key = graded_set
    spec = importlib.util.spec_from_file_location("blind_grading", PROJECT_ROOT / "benchmarks" / "blind_grading.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    answers = iter(["2", "", "x", "0", "too stiff", "q"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert cli.main(["grade", "--set", str(folder), "--grader", "d"]) == 0
    shown = capsys.readouterr().out
    assert "alpha7" not in shown and "beta9" not in shown                 # the recipe is never shown
    saved = grading.load_grades(folder, "d")
    assert saved["grade"].tolist() == [2, 0] and saved["note"].tolist() == ["", "too stiff"]
    answers = iter(["1", ""] * 8)
    assert cli.main(["grade", "--set", str(folder), "--grader", "d"]) == 0
    assert len(grading.load_grades(folder, "d")) == len(key)


def test_an_earlier_sets_replies_can_be_drawn_again_beside_a_new_recipe(graded_set, tmp_path_factory):
    folder, key = graded_set
    earlier = grading.set_samples(folder)
    assert set(earlier) == {"alpha7", "beta9"} and len(earlier["alpha7"]) == 4
    assert list(earlier["alpha7"].columns) == ["id", "kind", "message", "reply"]
    assert earlier["alpha7"]["reply"].str.startswith("옛").all()   # each reply stays with its recipe
    sheet, new_key = grading.draw({"gamma": replies("또")} | {"alpha7": earlier["alpha7"]}, n=4, seed=2)
    assert new_key["recipe"].value_counts().to_dict() == {"gamma": 4, "alpha7": 4}
