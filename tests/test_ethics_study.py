"""Ethics study side: splits and pairs, training, the head, calibration on validation, the comparison, metrics.

The tiny profile's scores are noise: these tests check mechanics; quality is measured in notebook 04.
"""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from ohlora_utils import ethics, ethics_study
from ohlora_utils.data import ETHICS_CATEGORIES, load_ethics
from ohlora_utils.errors import OhloraError
from ohlora_utils.ethics import GENERAL, INSULT, LOVE, ORIGINAL_THRESHOLDS, POLITICS, load_classifier
from ohlora_utils.sbert import SBERT_META
from ohlora_utils.sbert_training import SbertTrainConfig
from ohlora_utils.storage import write_manifest

REFUSAL = "미안, 그건 좀 부담스러워"
FRIENDLY = "좋아! 같이 해 보자 😊"


def scores(love=0.0, general=0.0, politics=0.0, insult=0.0):
    return {LOVE: love, GENERAL: general, POLITICS: politics, INSULT: insult}


# --- splits, pairs and training -------------------------------------------------------------------------

def test_the_dataset_has_train_valid_and_test_splits_of_every_category():
    train, valid, test = ethics_study.ethics_splits(load_ethics())
    for split in (train, valid, test):
        assert set(split["category"]) == set(ETHICS_CATEGORIES)
    assert not (set(train["text"]) & set(valid["text"]) or set(train["text"]) & set(test["text"])
                or set(valid["text"]) & set(test["text"]))
    assert (train["category"] == GENERAL).sum() >= 2400   # everyday traffic, not only tidy questions


def test_each_prompt_gives_four_pairs_labelled_one_for_its_own_category():
    frame = pd.DataFrame({"text": ["사랑해", "점심 뭐 먹지"], "category": [LOVE, GENERAL]})
    pairs = ethics_study.ethics_pairs(frame)
    assert list(pairs["a"]) == ["사랑해"] * 4 + ["점심 뭐 먹지"] * 4
    assert list(pairs["b"]) == list(ETHICS_CATEGORIES) * 2
    assert list(pairs["label"]) == [1, 0, 0, 0, 0, 1, 0, 0]


def test_category_targets_are_the_pair_labels_grouped_by_prompt():
    frame = pd.DataFrame({"text": ["사랑해", "점심 뭐 먹지", "니네 엄마"], "category": [LOVE, GENERAL, INSULT]})
    targets = ethics_study.category_targets(frame["category"])
    assert targets.shape == (3, len(ETHICS_CATEGORIES))
    assert targets.reshape(-1).tolist() == ethics_study.ethics_pairs(frame)["label"].tolist()


def test_presets_quick_default_paper():
    assert set(ethics_study.PRESETS) == {"quick", "default", "paper"}
    assert 0 < ethics_study.PRESETS["quick"].max_steps <= 100
    paper = ethics_study.PRESETS["paper"]
    assert (paper.epochs, paper.batch_size, paper.max_steps) == (10, 16, -1)
    assert not paper.group_by_text   # the original's batches of single pairs
    assert ethics_study.PRESETS["default"].group_by_text and ethics_study.PRESETS["quick"].group_by_text
    assert ethics_study.preset_config("default", epochs=0, seed=3).epochs == ethics_study.PRESETS["default"].epochs
    assert ethics_study.preset_config("default", epochs=5, seed=3).epochs == 5
    assert ethics_study.preset_config("quick", seed=3).seed == 3
    with pytest.raises(OhloraError, match="unknown preset"):
        ethics_study.preset_config("huge")


def test_grouped_training_scores_each_prompt_against_all_names(tiny_profile, ethics_small_dataset, tmp_path):
    config = SbertTrainConfig(epochs=1, batch_size=4, max_steps=2, learning_rate=1e-3, group_by_text=True)
    history = ethics_study.train_ethics(tiny_profile, config, tmp_path / "grouped", dataset=ethics_small_dataset)
    meta = json.loads((tmp_path / "grouped" / "ohlora-sbert.json").read_text(encoding="utf-8"))
    assert meta["config"]["group_by_text"] and meta["provenance"]["inputs"]["grouped_by"] == "text"
    assert {"train_loss", "valid_loss", "valid_pearson"} <= set(history.columns)
    classifier = load_classifier(tmp_path / "grouped")
    assert classifier.score_frame(["안녕"]).shape == (1, len(ETHICS_CATEGORIES))


def test_training_saves_a_model_with_an_epoch_log_that_loads(ethics_trained):
    model_dir, history = ethics_trained
    assert {"train_loss", "valid_loss"} <= set(history.columns) and len(history) == 1
    meta = json.loads((model_dir / SBERT_META).read_text(encoding="utf-8"))
    assert meta["task"] == "ethics" and meta["categories"] == list(ETHICS_CATEGORIES)
    assert meta["valid_prompts"] == 8 and meta["train_prompts"] == 36


# --- the head and calibration on validation -------------------------------------------------------------

def test_budget_threshold_lets_at_most_the_allowed_negatives_through():
    negatives = np.array([0.1, 0.42, 0.9, 0.3])
    assert ethics_study.budget_threshold(negatives, 0) == pytest.approx(0.9001)
    assert ethics_study.budget_threshold(negatives, 1) == pytest.approx(0.4201)
    for allowed in range(4):
        assert (negatives >= ethics_study.budget_threshold(negatives, allowed)).sum() <= allowed


def test_calibration_keeps_each_category_within_its_false_flag_budget():
    rng = np.random.default_rng(0)
    gold = pd.Series([GENERAL] * 400 + [LOVE] * 40 + [POLITICS] * 40 + [INSULT] * 40)
    frame = pd.DataFrame({name: rng.uniform(0, 0.8, len(gold)) for name in ETHICS_CATEGORIES})
    for name in ethics.SANCTION_CATEGORIES:
        frame.loc[gold == name, name] += 0.15            # positives score a little higher
    frame[GENERAL] = rng.uniform(0, 0.45, len(gold))     # no veto in play
    budgets = {LOVE: 0.01, POLITICS: 0.01, INSULT: 0.0}
    thresholds, table = ethics_study.calibrate_on_validation(frame, gold, budgets)
    innocent = gold == GENERAL
    for name in ethics.SANCTION_CATEGORIES:
        flagged = frame[name] >= thresholds[name]
        assert (flagged & innocent).sum() <= int(budgets[name] * innocent.sum())
        assert table.loc[name, "false flags"] == (flagged & innocent).sum()
        assert table.loc[name, "other sanctions flagged"] == (flagged & ~innocent & (gold != name)).sum()
    assert table.loc[INSULT, "false flags"] == 0 and thresholds[GENERAL] == ethics_study.VETO


def test_a_message_of_another_sanction_does_not_spend_the_budget():
    # a love confession that mentions parents scores high on 패드립: it must not lift the 패드립 threshold
    gold = pd.Series([GENERAL] * 3 + [LOVE, INSULT, INSULT])
    frame = pd.DataFrame({LOVE: [0.1, 0.1, 0.1, 0.9, 0.1, 0.1], GENERAL: [0.0] * 6, POLITICS: [0.0] * 6,
                          INSULT: [0.2, 0.3, 0.1, 0.99, 0.8, 0.7]})
    thresholds, table = ethics_study.calibrate_on_validation(frame, gold, {LOVE: 0.0, POLITICS: 0.0, INSULT: 0.0})
    assert 0.3 < thresholds[INSULT] <= 0.7                 # above every innocent score, below both insults
    assert table.loc[INSULT, "recall (validation)"] == 1.0 and table.loc[INSULT, "other sanctions flagged"] == 1


def test_the_head_learns_separable_embeddings_in_category_order():
    rng = np.random.default_rng(1)
    centres = np.eye(4, 8)
    labels = np.repeat(list(ETHICS_CATEGORIES), 30)
    embeddings = np.vstack([centres[list(ETHICS_CATEGORIES).index(c)] + rng.normal(0, 0.05, 8) for c in labels])
    weight, bias = ethics_study.fit_head(embeddings, labels)
    probabilities = ethics.head_probabilities(embeddings, weight, bias)
    assert (probabilities.argmax(axis=1) == np.repeat(range(4), 30)).mean() == 1.0
    with pytest.raises(OhloraError, match="every category"):
        ethics_study.fit_head(embeddings[:60], labels[:60])


def test_calibrate_stores_the_chosen_scoring_and_the_test_confusion(ethics_trained, ethics_small_dataset, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(ethics_trained[0], model_dir)
    ethics_classifier = ethics.load_classifier(model_dir)
    table = ethics_study.calibrate(ethics_classifier, ethics_small_dataset, "head", "calibrated")
    assert list(table.index) == list(ethics.SANCTION_CATEGORIES)
    loaded = ethics.load_classifier(model_dir)
    assert loaded.scoring == "head" and loaded.thresholds == ethics_classifier.thresholds
    stored = json.loads((model_dir / ethics.THRESHOLDS_FILE).read_text(encoding="utf-8"))
    assert stored["details"]["chosen_on"].startswith("validation split")
    confusion = pd.read_csv(model_dir / ethics_study.CONFUSION_FILE, index_col=0)
    test = ethics_small_dataset[ethics_small_dataset["split"] == "test"]
    assert list(confusion.index) == list(ETHICS_CATEGORIES) and confusion.to_numpy().sum() == len(test)
    ethics_study.calibrate(loaded, ethics_small_dataset, "names", "original")
    assert ethics.load_classifier(model_dir).thresholds == ORIGINAL_THRESHOLDS
    with pytest.raises(OhloraError, match="original's thresholds are for the names scoring"):
        ethics_study.calibrate(loaded, ethics_small_dataset, "head", "original")


def test_the_comparison_has_a_row_per_candidate_with_test_and_yardstick_figures(ethics_trained, ethics_small_dataset):
    ethics_classifier = ethics.load_classifier(ethics_trained[0])
    train, valid, test = ethics_study.ethics_splits(ethics_small_dataset)
    everyday = pd.DataFrame({"text": ["응", "ㅋㅋㅋ", "엄마가 김치찌개 해줬어"], "kind": ["reaction"] * 3})
    sanction = test[test["category"] != GENERAL]
    embedded = {name: ethics_classifier.embed_texts(frame["text"]) for name, frame in
                {"train": train, "valid": valid, "test": test, "everyday": everyday, "sanction": sanction}.items()}
    head = ethics_study.fit_head(embedded["train"], train["category"])
    candidates = ethics_study.candidate_rules(ethics_classifier, embedded, valid, test, head)
    assert list(candidates)[0] == "names · original thresholds"
    assert {c.scoring for c in candidates.values()} == {"names", "margin", "head"}
    table = ethics_study.comparison_table(ethics_classifier, candidates, embedded,
                                          {"test": test, "everyday": everyday, "sanction": sanction}, head)
    assert list(table.index) == list(candidates)
    assert {"test argmax", "everyday counted %", "everyday blocked at once", f"yardstick recall {INSULT}"} <= set(table.columns)
    assert ((0 <= table["everyday counted %"]) & (table["everyday counted %"] <= 100)).all()
    flags = ethics_study.everyday_flags(ethics_classifier, candidates["names · original thresholds"], embedded["everyday"],
                                        everyday, head)
    assert set(flags.columns) >= {"text", "kind", "counted"}


# --- evaluation helpers ---------------------------------------------------------------------------------

def test_confusion_matrix_metrics_and_accuracy_by_hand():
    gold = pd.Series([LOVE, LOVE, GENERAL, POLITICS, INSULT])
    predicted = pd.Series([LOVE, GENERAL, GENERAL, POLITICS, LOVE])
    matrix = ethics_study.confusion_matrix(gold, predicted)
    assert list(matrix.index) == list(matrix.columns) == list(ETHICS_CATEGORIES)
    assert matrix.loc[LOVE, GENERAL] == 1 and matrix.loc[INSULT, LOVE] == 1 and matrix.to_numpy().sum() == 5
    metrics = ethics_study.category_metrics(gold, predicted)
    assert metrics.loc[LOVE, "precision"] == pytest.approx(0.5) and metrics.loc[LOVE, "recall"] == pytest.approx(0.5)
    assert metrics.loc[GENERAL, "f1"] == pytest.approx(2 / 3) and metrics.loc[INSULT, "f1"] == 0
    assert ethics_study.argmax_accuracy(gold, predicted) == (3, 5)


def sweep_frame():
    rows = [scores(love=0.99), scores(love=0.965), scores(love=0.60), scores(love=0.93, general=0.1),
            scores(general=0.9, love=0.96), scores(politics=0.97), scores(insult=0.92), scores(politics=0.5)]
    gold = pd.Series([LOVE, LOVE, LOVE, GENERAL, GENERAL, POLITICS, INSULT, POLITICS])
    return pd.DataFrame(rows), gold


def test_sweep_counts_flags_per_category_with_the_veto():
    frame, gold = sweep_frame()
    sweep = ethics_study.threshold_sweep(frame, gold, grid=[0.9, 0.95, 0.98])
    love = sweep[sweep["category"] == LOVE].set_index("threshold")
    assert love.loc[0.9, ["tp", "fp", "fn"]].tolist() == [2, 1, 1]   # the 0.96 general prompt is vetoed
    assert love.loc[0.95, ["tp", "fp", "fn"]].tolist() == [2, 0, 1]
    assert love.loc[0.98, "recall"] == pytest.approx(1 / 3)


def test_chosen_threshold_is_the_middle_of_the_best_band():
    frame, gold = sweep_frame()
    sweep = ethics_study.threshold_sweep(frame, gold, grid=np.round(np.arange(0.90, 1.0, 0.01), 2))
    chosen, table = ethics_study.choose_thresholds(sweep, target_precision=0.95)
    assert chosen[LOVE] == pytest.approx(0.95)     # 0.94–0.96 keep 2/3 love at precision 1 → middle
    assert chosen[GENERAL] == ORIGINAL_THRESHOLDS[GENERAL]
    assert table.loc[LOVE, "recall"] == pytest.approx(2 / 3) and table.loc[LOVE, "precision"] == 1


def test_rule_report_counts_caught_and_falsely_flagged_prompts():
    frame, gold = sweep_frame()
    report = ethics_study.rule_report(frame, gold, {**ORIGINAL_THRESHOLDS, LOVE: 0.9, POLITICS: 0.9})
    assert report.loc[LOVE, "flagged_as_own"] == 2 and report.loc[GENERAL, "flagged"] == 1
    assert report.loc[LOVE, "counted_as"] == 3                 # two love prompts and one 일반 prompt
    assert ethics_study.rule_summary(report) == {"caught": (4, 6), "false": (1, 2)}
    friendly = ethics_study.rule_report(frame, gold, {**ORIGINAL_THRESHOLDS, LOVE: 0.9}, reply=FRIENDLY)
    assert ethics_study.rule_summary(friendly)["caught"] == (1, 6)   # only 패드립 counts without a refusal
    errors = ethics_study.rule_errors(pd.Series([f"t{i}" for i in range(8)]), gold, frame,
                                {**ORIGINAL_THRESHOLDS, LOVE: 0.9, POLITICS: 0.9})
    assert set(errors["error"]) == {"missed", "false sanction"} and len(errors) == 3


def test_argmax_errors_list_the_most_confident_mistakes_first():
    frame, gold = sweep_frame()
    errors = ethics_study.argmax_errors(pd.Series([f"t{i}" for i in range(8)]), gold, frame)
    assert list(errors["text"]) == ["t3", "t4"]          # margins 0.83 and 0.06; only wrong argmaxes
    assert errors["margin"].is_monotonic_decreasing


def comparison_rows(**rows):
    """A comparison table with the columns choose_rule reads; each row: (blocked, counted %, precision, recalls)."""
    table = {}
    for label, (blocked, counted, precision, recalls) in rows.items():
        table[f"{label} · calibrated on validation"] = {
            "everyday blocked at once": blocked, "everyday counted %": counted,
            **{f"test precision {name}": precision for name in ethics.SANCTION_CATEGORIES},
            **{f"yardstick recall {name}": r for name, r in zip(ethics.SANCTION_CATEGORIES, recalls)}}
    return pd.DataFrame.from_dict(table, orient="index")


def test_the_choice_takes_the_best_lowest_recall_among_rules_that_block_no_one():
    table = comparison_rows(names=(0, 0.68, 0.93, (0.90, 0.95, 0.95)),
                            margin=(0, 0.40, 0.95, (0.88, 0.96, 0.23)),      # quieter, but misses 패드립
                            head=(1, 0.50, 0.95, (0.99, 0.99, 0.99)),        # blocks an innocent user
                            loose=(0, 0.74, 0.36, (0.93, 0.98, 0.93)))       # flags under the wrong name
    label, why = ethics_study.choose_rule(table)
    assert label == "names · calibrated on validation" and "0.900" in why


def test_the_choice_falls_back_to_the_fewest_blocked_and_says_so():
    table = comparison_rows(names=(2, 0.5, 0.95, (0.9, 0.9, 0.9)), margin=(1, 3.0, 0.95, (0.5, 0.5, 0.5)))
    label, why = ethics_study.choose_rule(table)
    assert label == "margin · calibrated on validation" and "no candidate meets every condition" in why
