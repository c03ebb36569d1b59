"""Blind grading of Oh-LoRA's replies: draw a sheet that hides what produced each reply, read grades, score.

Usage::

    sheet, key = draw({"reproduce-default": reply_samples(report_dir)}, n=200, seed=0)
    write_set(folder, sheet, key)             # sheet.csv (item, message, reply) + key.csv (item → recipe)
    tables = grade_tables(folder)             # share graded 2 / 1 / 0 per recipe and grader, agreement
Command line: ``benchmarks/blind_grading.py draw | grade | summary`` (``grade`` lets a person grade in the terminal).

The protocol (``data/eval/grading/RUBRIC.md``): a grader sees only the user's message and the reply,
in a shuffled order, with opaque item ids, and gives 2 (fluent, on topic, in her voice), 1 (fluent but
generic, odd or slightly off) or 0 (off topic, incoherent, factually wrong, out of character). Which model,
recipe or preset made a reply is in ``key.csv``, which graders never open. Each grader's grades are a
file ``grades_<grader>.csv`` (item, grade, note) kept with the sheet, so every figure can be re-checked.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .data import DataValidationError, Problem, validate_rows
from .errors import OhloraError
from .eval_data import EVAL_DIR
from .storage import atomic_write_text

GRADING_DIR = EVAL_DIR / "grading"
RUBRIC = GRADING_DIR / "RUBRIC.md"
GRADES = ("0", "1", "2")
SHEET_COLUMNS = ("item", "message", "reply")
KEY_COLUMNS = ("item", "recipe", "source_id", "kind")
GRADE_COLUMNS = ("item", "grade", "note")
GRADER_NAME = re.compile(r"[A-Za-z0-9_-]+")


def draw(samples: dict[str, pd.DataFrame], n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` replies per recipe (each frame: id, kind, message, reply), shuffled together, ids hidden.

    Returns the sheet the graders see and the key that says which recipe made each item.
    """
    drawn = []
    for recipe, frame in samples.items():
        if len(frame) < n:
            raise OhloraError(f"recipe {recipe!r} has {len(frame)} replies, fewer than the {n} asked for",
                              fix="run the yardstick on more everyday messages or draw fewer")
        drawn.append(frame.sample(n, random_state=seed).assign(recipe=recipe))
    mixed = pd.concat(drawn).sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)
    mixed["item"] = [f"g{i:04d}" for i in range(1, len(mixed) + 1)]
    sheet = mixed[list(SHEET_COLUMNS)]
    key = mixed.rename(columns={"id": "source_id"})[list(KEY_COLUMNS)]
    return sheet, key


def draw_every(replies: pd.DataFrame, by: str, folder: Path, seed: int = 0) -> pd.DataFrame:
    """A new grading set in ``folder`` from one frame of replies (id, kind, message, reply and the ``by``
    column naming what made each): as many replies of each as the one with the fewest has. Returns the sheet."""
    samples = {name: group[["id", "kind", "message", "reply"]] for name, group in replies.groupby(by)}
    sheet, key = draw(samples, min(len(group) for group in samples.values()), seed)
    write_set(folder, sheet, key)
    return sheet


def set_samples(folder: Path) -> dict[str, pd.DataFrame]:
    """The replies of an earlier graded set, by the recipe that made them (id, kind, message, reply): so a
    new recipe can be graded blind beside an old one on the same messages without re-running the old one."""
    folder = Path(folder)
    sheet = load_sheet(folder).set_index("item")
    joined = load_key(folder).set_index("item").join(sheet, how="inner")
    return {recipe: group.rename(columns={"source_id": "id"})[["id", "kind", "message", "reply"]].reset_index(drop=True)
            for recipe, group in joined.groupby("recipe")}


def _csv_text(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    return buffer.getvalue()


def write_set(folder: Path, sheet: pd.DataFrame, key: pd.DataFrame) -> None:
    folder = Path(folder)
    if (folder / "sheet.csv").exists():
        raise OhloraError(f"{folder} already holds a grading set", fix="choose a new folder for a new draw")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "sheet.csv", _csv_text(sheet))
    atomic_write_text(folder / "key.csv", _csv_text(key))


def load_sheet(folder: Path) -> pd.DataFrame:
    return validate_rows(Path(folder) / "sheet.csv", SHEET_COLUMNS, lambda line, row: [], unique=("item",))


def load_key(folder: Path) -> pd.DataFrame:
    return validate_rows(Path(folder) / "key.csv", KEY_COLUMNS, lambda line, row: [], unique=("item",))


def load_grades(folder: Path, grader: str) -> pd.DataFrame:
    """One grader's grades, validated: known items, each once, grade 0 / 1 / 2 (row and column named)."""
    items = set(load_sheet(folder)["item"])
    path = Path(folder) / f"grades_{grader}.csv"

    def check(line: int, row: dict) -> list[Problem]:
        problems = []
        if row["item"] not in items:
            problems.append(Problem(line, "item", f"{row['item']!r} is not on the sheet"))
        if row["grade"].strip() not in GRADES:
            problems.append(Problem(line, "grade", f"{row['grade']!r} is not 0, 1 or 2"))
        return problems

    frame = validate_rows(path, GRADE_COLUMNS, check, unique=("item",))
    frame["grade"] = frame["grade"].str.strip().astype(int)
    return frame


def graders(folder: Path) -> list[str]:
    return sorted(path.stem.removeprefix("grades_") for path in Path(folder).glob("grades_*.csv"))


def cohen_kappa(first: pd.Series, second: pd.Series) -> float:
    """Agreement beyond chance between two graders over the same items (1 = always equal, 0 = chance)."""
    labels = sorted(set(first) | set(second))
    observed = float(np.mean(first.to_numpy() == second.to_numpy()))
    expected = sum(float(np.mean(first == label)) * float(np.mean(second == label)) for label in labels)
    return round((observed - expected) / (1 - expected), 3) if expected < 1 else 1.0


def grade_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Per recipe and grader: items graded, share of 2 / 1 / 0, mean; agreement between graders; by kind."""
    folder = Path(folder)
    key = load_key(folder)
    names = graders(folder)
    if not names:
        raise OhloraError(f"no grades_<grader>.csv in {folder}",
                          fix="grade it first: benchmarks/blind_grading.py grade --set FOLDER --grader NAME")
    merged = key.set_index("item")
    for name in names:
        grades = load_grades(folder, name).set_index("item")["grade"]
        if len(grades) < len(merged):
            raise DataValidationError(folder / f"grades_{name}.csv",
                                      [Problem(0, "item", f"{len(merged) - len(grades)} item(s) not graded yet")])
        merged[name] = grades
    rows = []
    for recipe, group in merged.groupby("recipe"):
        for name in names:
            grade = group[name]
            rows.append({"recipe": recipe, "grader": name, "items": len(grade),
                         "graded 2 %": round(100 * float((grade == 2).mean()), 1),
                         "graded 1 %": round(100 * float((grade == 1).mean()), 1),
                         "graded 0 %": round(100 * float((grade == 0).mean()), 1),
                         "mean grade": round(float(grade.mean()), 2)})
    tables = {"grades by recipe": pd.DataFrame(rows)}
    if len(names) >= 2:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
        tables["agreement between graders"] = pd.DataFrame([
            {"graders": f"{a} / {b}", "items": len(merged),
             "same grade %": round(100 * float((merged[a] == merged[b]).mean()), 1),
             "within one %": round(100 * float(((merged[a] - merged[b]).abs() <= 1).mean()), 1),
             "Cohen's kappa": cohen_kappa(merged[a], merged[b])} for a, b in pairs])
    merged["mean of graders"] = merged[names].mean(axis=1)
    tables["mean grade by kind"] = (merged.groupby(["recipe", "kind"])["mean of graders"]
                                    .agg(["count", "mean"]).round(2).reset_index())
    return tables
