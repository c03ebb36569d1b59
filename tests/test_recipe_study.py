"""The recipe study: each recipe is the default preset's reply config with one named change, and the table
joins blind grades with the training runs and metrics of the reply texts."""
from dataclasses import asdict, fields

import matplotlib
import pandas as pd
import pytest

from ohlora_utils import recipe_study
from ohlora_utils.errors import OhloraError
from ohlora_utils.finetune import LoraTrainConfig, task_config
from ohlora_utils.recipe_study import ADOPTED, BASELINE, RECIPES, STUDY_BASE, recipe_config

matplotlib.use("Agg")


def changed_fields(config: LoraTrainConfig) -> dict:
    base = asdict(STUDY_BASE)
    return {name: value for name, value in asdict(config).items() if base[name] != value}


def test_the_baseline_is_the_original_recipe_for_one_epoch():
    baseline = recipe_config(BASELINE, train_rows=2573)
    assert baseline == STUDY_BASE
    assert (baseline.learning_rate, baseline.lora_alpha, baseline.lora_r, baseline.epochs) == (3e-4, 16, 64, 1)
    assert task_config("output_message", "paper").learning_rate == baseline.learning_rate   # the original's


def test_the_default_preset_trains_the_reply_with_the_adopted_recipe():
    assert task_config("output_message", "default") == recipe_config(ADOPTED, train_rows=2573)


def test_each_recipe_changes_only_what_it_names():
    for name, recipe in RECIPES.items():
        changed = changed_fields(recipe_config(name, train_rows=2573))
        expected = dict(recipe.overrides)
        if recipe.train_fraction < 1:
            expected["max_train_rows"] = round(2573 * recipe.train_fraction)
        assert changed == expected, name


def test_the_learning_curve_samples_a_share_of_the_train_rows():
    assert recipe_config("¼ of the rows", train_rows=2573).max_train_rows == 643
    assert recipe_config("½ of the rows", train_rows=2573).max_train_rows == 1286


def test_recipe_folders_are_distinct_and_overrides_are_training_settings():
    assert len({recipe.folder for recipe in RECIPES.values()}) == len(RECIPES)
    names = {field.name for field in fields(LoraTrainConfig)}
    assert all(set(recipe.overrides) <= names for recipe in RECIPES.values())


def test_an_unknown_recipe_is_a_clear_error():
    with pytest.raises(OhloraError, match="unknown recipe"):
        recipe_config("lr 1", train_rows=10)


def grades_and_runs():
    replies = {"lr 1e-3": pd.DataFrame({"reply": ["응 좋아", "하하"]}),
               BASELINE: pd.DataFrame({"reply": ["하하", "(읽씹)"]})}
    grades = pd.DataFrame({"recipe": [BASELINE, BASELINE, "lr 1e-3", "lr 1e-3"], "grader": ["x", "y", "x", "y"],
                           "graded 2 %": [0.0, 50.0, 100.0, 50.0], "graded 0 %": [50.0, 50.0, 0.0, 0.0],
                           "mean grade": [0.5, 1.0, 2.0, 1.5]})
    runs = pd.DataFrame({"recipe": [BASELINE, "lr 1e-3"], "train_minutes": [11.6, 11.8], "valid_loss": [2.39, 2.2],
                         "selection_top1": [0.4, 0.5]})
    return replies, grades, runs


def test_the_table_lists_recipes_in_the_study_s_order_with_grades_runs_and_text_metrics():
    table = recipe_study.recipe_table(*grades_and_runs())
    assert list(table["recipe"]) == [BASELINE, "lr 1e-3"]
    row = table.set_index("recipe").loc["lr 1e-3"]
    assert row["graded 2 %"] == 75.0 and row["mean grade"] == 1.75
    assert row["selection_top1"] == 0.5 and row["train_minutes"] == 11.8
    assert table.set_index("recipe").loc[BASELINE, "fell back %"] == 50.0


def test_the_plot_draws_two_bars_per_recipe_and_marks_the_baseline():
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots()
    recipe_study.plot_recipes(ax, recipe_study.recipe_table(*grades_and_runs()))
    assert len(ax.patches) == 4 and len(ax.lines) == 1
    plt.close(figure)
