"""The recipe study (study side): the reply adapter trained several ways, each graded blind on everyday chat.

Usage::

    config = recipe_config("lr 1e-3", train_rows=2573)          # the default preset's reply config, changed
    table = recipe_results(RECIPE_SET)      # the committed, blind-graded set: the table notebook 02 shows

Command line: ``benchmarks/recipe_study.py train`` trains every recipe's reply adapter, ``generate`` answers
a seeded sample of the yardstick's everyday messages with each (the chat's decoding; ``--selection`` also
ranks notebook 02's response selection), ``draw`` makes one blind grading set of all the replies and ``summary`` prints the table
that notebook 02 rebuilds from the committed set.

Every recipe starts from the default preset's reply config as it was when the study ran (``STUDY_BASE``: one
epoch over every train row, lr 3e-4, LoRA r 64 alpha 16, synonym augmentation) and changes one thing: how
many rows (the learning curve), the learning rate or the LoRA alpha (the scale of the LoRA update is alpha /
r), a second epoch with the best-by-validation epoch kept (over half the rows: the default's number of steps, so
more rows and more passes are compared at equal cost), or NEFTune noise on the input embeddings. The
default preset took the winner, ``ADOPTED`` (docs/fine_tuning.md has the table).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from .finetune import LoraTrainConfig
from .grading import GRADING_DIR

REPLY = "output_message"
BASELINE = "original (lr 3e-4, alpha 16, 1 epoch)"
# every recipe changes this: the default preset's reply config when the study ran (the original's lr and alpha)
STUDY_BASE = LoraTrainConfig(epochs=1, augment=True)
ADOPTED = "lr 1e-3"                               # the recipe the default preset took for the reply
RECIPE_SET = GRADING_DIR / "2026-11-30-recipes"   # the committed blind-graded set notebook 02 reads
DATA_SIZE_SET = GRADING_DIR / "2026-12-02-data"   # the adopted recipe on 2,573 / 3,056 / 4,077 train rows, graded blind
RUNS_FILE = "runs.csv"                            # per recipe: train minutes, steps, kept step, valid loss
RUN_COLUMNS = ("valid_loss", "selection_top1", "steps", "train_minutes")   # shown in the table when measured


@dataclass(frozen=True)
class Recipe:
    folder: str                                          # where its adapter goes, under the study's output
    overrides: dict = field(default_factory=dict)        # LoraTrainConfig fields changed from the default preset
    train_fraction: float = 1.0                          # < 1: a seeded sample of this share of the train rows
    note: str = ""                                       # what the row tests, for the table


RECIPES: dict[str, Recipe] = {
    BASELINE: Recipe("default", note="the default preset before the study: the original's lr and alpha"),
    "¼ of the rows": Recipe("quarter", train_fraction=0.25, note="learning curve: a quarter of the train rows"),
    "½ of the rows": Recipe("half", train_fraction=0.5, note="learning curve: half of the train rows"),
    "alpha 64": Recipe("alpha64", {"lora_alpha": 64}, note="LoRA scale alpha / r 1 instead of 0.25"),
    "lr 1e-3": Recipe("lr1e-3", {"learning_rate": 1e-3}, note="3.3× the original's learning rate (adopted)"),
    "NEFTune alpha 50": Recipe("neftune50", {"neftune_noise_alpha": 50.0},
                               note="noise ≈ 14 % of a token's embedding norm at 60 tokens"),
    "½ of the rows, 2 epochs, best by valid": Recipe(
        "half-epochs2best", {"epochs": 2, "keep_best_epoch": True}, train_fraction=0.5,
        note="the default's steps as two passes over half the rows; the better epoch on valid kept"),
}


def recipe_config(name: str, train_rows: int) -> LoraTrainConfig:
    """``STUDY_BASE`` with ``name``'s changes; ``train_rows``: rows in the train split."""
    from .errors import OhloraError

    if name not in RECIPES:
        raise OhloraError(f"unknown recipe {name!r}", fix=f"use one of: {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    overrides = dict(recipe.overrides)
    if recipe.train_fraction < 1:
        overrides["max_train_rows"] = max(1, round(train_rows * recipe.train_fraction))
    return replace(STUDY_BASE, **overrides)


def recipe_table(replies: dict[str, pd.DataFrame], grades_by_recipe: pd.DataFrame | None,
                 runs: pd.DataFrame) -> pd.DataFrame:
    """One row per recipe: what it tests, the blind grade (averaged over graders), the validation loss of the
    kept epoch, response selection top-1 (when measured), steps, train minutes and the reply texts' automatic
    metrics.

    ``runs``: one row per recipe with ``recipe`` and the ``RUN_COLUMNS`` measured (``runs.csv``)."""
    from .decoding_study import study_table

    measured = {row["recipe"]: {column: float(row[column]) for column in RUN_COLUMNS if column in runs}
                for row in runs.to_dict("records")}
    return study_table(replies, grades_by_recipe, {name: recipe.note for name, recipe in RECIPES.items()},
                       "recipe", measured)


def recipe_results(folder=RECIPE_SET) -> pd.DataFrame:
    """``recipe_table`` of a graded set folder: its replies, every grader's grades and its ``runs.csv``."""
    from . import grading

    return recipe_table(grading.set_samples(folder), grading.grade_tables(folder)["grades by recipe"],
                        pd.read_csv(folder / RUNS_FILE))


def plot_recipes(ax, table: pd.DataFrame) -> None:
    """Share of replies graded 2 and graded 0 per recipe (``recipe_table`` with grades), the baseline marked."""
    from .plots import grade_bars

    grade_bars(ax, table, "recipe", BASELINE, "blind grade by training recipe (reply adapter)")
