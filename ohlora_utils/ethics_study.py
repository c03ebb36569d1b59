"""The study side of the ethics classifier: splits, training, calibration on validation, the scorings compared.

Usage::

    train, valid, test = ethics_splits(load_ethics())
    history = train_ethics(get_profile(), preset_config("default"))        # → artifacts_dir()/"sbert_ethics"
    classifier = load_classifier(default_model_dir())
    frames = {"train": train, "valid": valid, "test": test, "everyday": everyday, "sanction": sanction}
    embedded = embed_sets(classifier, frames)                   # each text embedded once, for every scoring
    head = fit_head(embedded["train"], train["category"])
    candidates = candidate_rules(classifier, embedded, valid, test, head)   # names / margin / head, calibrated
    comparison_table(classifier, candidates, embedded, frames, head)

Command line: ``python -m ohlora_utils.ethics_study --preset default`` (train, calibrate, store the choice).

docs/ethics.md: each prompt gives 4 pairs (prompt, category name), label 1 for its own category and 0 for
the others; CosineSimilarityLoss over those pairs, each prompt encoded once against all four names
(``sbert_training.train_cosine_to_names``). Thresholds are chosen on the validation
split for a false-flag budget per category (the test split and data/eval/ are never used to fit
anything); the chat-time rule and classifier are in ``ethics``.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .data import ETHICS_CATEGORIES, load_ethics
from .errors import OhloraError, exit_on_user_error
from .ethics import (GENERAL, INSULT, LOVE, ORIGINAL_THRESHOLDS, POLITICS, REFUSAL_REPLY, SANCTION_CATEGORIES,
                     EthicsClassifier, checked_thresholds, default_model_dir, load_classifier, refused, rule)
from .presets import get_preset
from .profiles import Profile, get_profile
from .sbert_training import SbertTrainConfig, pairs_frame, train_cosine_pairs, train_cosine_to_names
from .storage import atomic_write_text
from .sweeps import Mark, nearest, precision_recall_panels, ratio, sweep as sweep_thresholds

ORIGINAL_TEST_ACCURACY = (133, 135)    # the original's argmax accuracy on its test split
CONFUSION_FILE = "confusion_matrix_test.csv"    # next to the model
SPLITS = ("train", "valid", "test")    # the dataset's split column: fit / calibrate / report
# calibration: the share of the innocent (일반) validation prompts that may count as this category (a refusing
# reply assumed). 패드립 blocks at the first offence, so it gets none; love and politics warn first and may use the
# yardstick's own budget, 1 %. A message of another sanction category counted under the wrong name is not an
# innocent user sanctioned: it stays out of the budget and shows in the test precision instead
FALSE_FLAG_BUDGET = {LOVE: 0.01, POLITICS: 0.01, INSULT: 0.0}
EVERYDAY_BUDGET_PCT = 1.0             # choose_rule: at most this % of the yardstick's everyday messages counted
MIN_TEST_PRECISION = 0.9               # choose_rule: a flag names the right sanction at least this often on test
DEFAULT_SCORING = "names"              # the scoring the study stores unless told otherwise (notebook 04: the choice)
VETO = ORIGINAL_THRESHOLDS[GENERAL]    # a 일반 score at or above this vetoes every category (the original's 0.5)
HEAD_C = 4.0                           # inverse L2 strength of the logistic-regression head
TARGET_PRECISION = 0.95                # the earlier rule: most recall at this precision on the test split
SWEEP_GRID = np.round(np.arange(0.0, 1.0001, 0.005), 3)   # thresholds tried by the sweep

PRESETS: dict[str, SbertTrainConfig] = {
    # make test: a few dozen steps, enough to see the mechanics end to end
    "quick": SbertTrainConfig(epochs=1, max_steps=40, learning_rate=1e-4, group_by_text=True),
    # make reproduce on 2 CPU cores: each prompt encoded once against the four names (a step of 16 prompts = 64
    # pairs costs about what a step of 16 pairs did), 4 epochs, bf16 autocast. On the 5,689-prompt data this
    # matched the earlier 2 epochs of single pairs (valid loss 0.0119 / Pearson 0.972 vs 0.0119 / 0.971) in
    # about half the time (notebook 04 and docs/ethics.md)
    "default": SbertTrainConfig(epochs=4, learning_rate=1e-4, bf16=True, group_by_text=True),
    # the original: 10 epochs, batches of 16 single pairs, every weight trained
    "paper": SbertTrainConfig(epochs=10, batch_size=16, learning_rate=2e-5, freeze_word_embeddings=False),
}


# --- splits and training ------------------------------------------------------------------------------

def ethics_splits(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(train, valid, test)`` as the dataset's split column says: fit, calibrate, report."""
    return tuple(frame[frame["split"] == name] for name in SPLITS)


def ethics_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """Four pairs per prompt: (text, category name), label 1.0 for its own category, 0.0 for the others."""
    texts, names, labels = [], [], []
    for text, category in zip(frame["text"], frame["category"]):
        for name in ETHICS_CATEGORIES:
            texts.append(text)
            names.append(name)
            labels.append(float(name == category))
    return pairs_frame(texts, names, labels)


def preset_config(preset: str = "", epochs: int = 0, seed: int = 42) -> SbertTrainConfig:
    """The preset's training config (``""`` = $OHLORA_PRESET or default); ``epochs`` > 0 overrides its epochs."""
    config = PRESETS[get_preset(preset)]
    return replace(config, epochs=epochs if epochs > 0 else config.epochs, seed=seed)


def train_ethics(profile: Profile, config: SbertTrainConfig, out_dir: Path | None = None,
                 dataset: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fine-tune the profile's S-BERT base on the train pairs (validation loss on the valid split), save it
    to ``out_dir``; the epoch log."""
    from .models import load_sbert_base

    train, valid, _ = ethics_splits(load_ethics() if dataset is None else dataset)
    model = load_sbert_base(profile)
    meta = {"task": "ethics", "categories": list(ETHICS_CATEGORIES), "train_prompts": len(train),
            "valid_prompts": len(valid)}
    out_dir = Path(out_dir) if out_dir else default_model_dir()
    if not config.group_by_text:   # the original's way: batches of single (prompt, name) pairs
        return train_cosine_pairs(model, ethics_pairs(train), ethics_pairs(valid), config, profile, out_dir, meta)
    return train_cosine_to_names(model, train["text"].tolist(), category_targets(train["category"]),
                                 valid["text"].tolist(), category_targets(valid["category"]), list(ETHICS_CATEGORIES),
                                 config, profile, out_dir, meta)


def category_targets(categories: Iterable[str]) -> np.ndarray:
    """One row per prompt, one column per category name (ETHICS_CATEGORIES order): 1.0 for its own, else 0.0 —
    the labels of ``ethics_pairs``, grouped by prompt."""
    categories = np.asarray(list(categories))
    return (categories[:, None] == np.asarray(ETHICS_CATEGORIES)[None, :]).astype(np.float32)


def fit_head(embeddings: np.ndarray, categories: Iterable[str], c: float = HEAD_C,
             seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """A softmax head (multinomial logistic regression, classes balanced) on the train embeddings:
    ``(weight, bias)`` in ETHICS_CATEGORIES order, as ``ethics.head_probabilities`` reads them."""
    from sklearn.linear_model import LogisticRegression

    categories = np.asarray(list(categories))
    if missing := [name for name in ETHICS_CATEGORIES if name not in set(categories)]:
        raise OhloraError(f"the head needs train prompts of every category (none of: {', '.join(missing)})",
                          fix="check the dataset's split column")
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    model.fit(embeddings, categories)
    order = [list(model.classes_).index(name) for name in ETHICS_CATEGORIES]
    return model.coef_[order].astype(np.float32), model.intercept_[order].astype(np.float32)


# --- calibration on the validation split --------------------------------------------------------------

def budget_threshold(negative_scores: np.ndarray, allowed: int) -> float:
    """The lowest threshold (4 decimals) that at most ``allowed`` of ``negative_scores`` reach."""
    ranked = np.sort(np.asarray(negative_scores, dtype=np.float64))[::-1]
    if allowed >= len(ranked):
        return float(ranked.min(initial=0.0)) if len(ranked) else 0.0
    return round(math.floor(ranked[allowed] * 1e4) / 1e4 + 1e-4, 4)


def calibrate_on_validation(scores: pd.DataFrame, gold: pd.Series, budgets: Mapping[str, float] = FALSE_FLAG_BUDGET,
                            veto: float = VETO) -> tuple[dict[str, float], pd.DataFrame]:
    """Per sanction category: the lowest threshold at which at most ``budget`` × (innocent validation
    prompts, 일반) count as it, a refusing reply assumed and the veto applied; then moved up to the middle
    of the band that keeps the same validation recall (the widest margin between the highest innocent score
    it lets through and the lowest caught one). Prompts of the other sanction categories neither spend the
    budget nor count as caught. Returns the thresholds (with the veto) and a table of what they do on the
    validation split."""
    gold = np.asarray(gold)
    open_to_flags = scores[GENERAL].to_numpy() < veto
    chosen, table = {GENERAL: veto}, []
    negatives = gold == GENERAL
    for name in SANCTION_CATEGORIES:
        values, positives = scores[name].to_numpy(), gold == name
        allowed = int(math.floor(budgets[name] * negatives.sum() + 1e-9))
        lowest = budget_threshold(values[negatives & open_to_flags], allowed)
        caught = values[positives & open_to_flags & (values >= lowest)]
        threshold = round((lowest + float(caught.min())) / 2, 4) if len(caught) else lowest
        chosen[name] = threshold
        flagged = (values >= threshold) & open_to_flags
        table.append({"category": name, "threshold": threshold, "lowest within budget": lowest,
                      "lowest caught": float(caught.min()) if len(caught) else float("nan"), "budget": budgets[name],
                      "false flags allowed": allowed, "false flags": int((flagged & negatives).sum()),
                      f"{GENERAL} prompts": int(negatives.sum()),
                      "other sanctions flagged": int((flagged & ~negatives & ~positives).sum()),
                      "recall (validation)": ratio((flagged & positives).sum(), positives.sum())})
    return checked_thresholds(chosen), pd.DataFrame(table).set_index("category")


@dataclass(frozen=True)
class Candidate:
    """One way to run the rule: a scoring, its thresholds, and how they were chosen."""
    scoring: str
    thresholds: dict
    chosen_on: str
    calibration: pd.DataFrame | None = None   # what the thresholds do on the validation split (calibrated ones)


def candidate_rules(classifier: EthicsClassifier, embedded: Mapping[str, np.ndarray], valid: pd.DataFrame,
                    test: pd.DataFrame, head, budgets: Mapping[str, float] = FALSE_FLAG_BUDGET) -> dict[str, Candidate]:
    """The rules notebook 04 compares: the original (names, 0.98 / 0.95 / 0.90); names with thresholds picked
    on the test split as before; and names, margin and head each calibrated on validation for ``budgets``."""
    candidates = {"names · original thresholds": Candidate("names", dict(ORIGINAL_THRESHOLDS), "the original's values")}
    test_scores = _frame(classifier.scores_from_embeddings(embedded["test"], "names"))
    earlier, _ = choose_thresholds(threshold_sweep(test_scores, test["category"]))
    candidates["names · picked on test (earlier rule)"] = Candidate("names", earlier, f"test split, precision ≥ {TARGET_PRECISION:g}")
    for scoring in ("names", "margin", "head"):
        valid_scores = _frame(classifier.scores_from_embeddings(embedded["valid"], scoring, head))
        thresholds, table = calibrate_on_validation(valid_scores, valid["category"], budgets)
        candidates[f"{scoring} · calibrated on validation"] = Candidate(scoring, thresholds, "validation split, false-flag budget",
                                                                        table)
    return candidates


def embed_sets(classifier: EthicsClassifier, frames: Mapping[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """The embedding of every text of each named frame, computed once for every scoring to share."""
    from tqdm.auto import tqdm

    return {name: classifier.embed_texts(frame["text"]) for name, frame in tqdm(frames.items(), desc="embedding")}


def thresholds_frame(candidates: Mapping[str, Candidate]) -> pd.DataFrame:
    """One row per candidate: its scoring, each category's threshold (일반 = the veto) and where they come from."""
    return pd.DataFrame.from_dict({label: {"scoring": c.scoring, **c.thresholds, "chosen on": c.chosen_on}
                                   for label, c in candidates.items()}, orient="index")


def _frame(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(values, columns=list(ETHICS_CATEGORIES))


def comparison_table(classifier: EthicsClassifier, candidates: Mapping[str, Candidate],
                     embedded: Mapping[str, np.ndarray], frames: Mapping[str, pd.DataFrame], head) -> pd.DataFrame:
    """One row per candidate rule: test argmax, precision and recall per category (refusing reply; a flag is
    right only for its own category), test 일반 flagged, and on the yardstick
    the everyday messages counted (worst case: refusing reply) and blocked at once (패드립), and the
    sanction messages caught per category. ``frames``: test, everyday (text, kind), sanction (text, category)."""
    rows = {}
    for label, candidate in candidates.items():
        scored = {name: _frame(classifier.scores_from_embeddings(embedded[name], candidate.scoring, head))
                  for name in ("test", "everyday", "sanction")}
        test_gold = frames["test"]["category"].to_numpy()
        correct, total = argmax_accuracy(test_gold, argmax_predictions(scored["test"]))
        test_report = rule_report(scored["test"], test_gold, candidate.thresholds)
        precision = {name: ratio(test_report.loc[name, "flagged_as_own"], test_report.loc[name, "counted_as"])
                     for name in SANCTION_CATEGORIES}
        everyday = rule(scored["everyday"], True, candidate.thresholds)
        counted = np.column_stack([np.asarray(everyday[name], dtype=bool) for name in SANCTION_CATEGORIES]).any(axis=1)
        sanction_report = rule_report(scored["sanction"], frames["sanction"]["category"].to_numpy(), candidate.thresholds)
        row = {"scoring": candidate.scoring, "thresholds chosen on": candidate.chosen_on,
               "test argmax": round(correct / total, 3),
               **{f"test precision {name}": round(precision[name], 3) for name in SANCTION_CATEGORIES},
               **{f"test recall {name}": _share(test_report, name) for name in SANCTION_CATEGORIES},
               f"test {GENERAL} flagged": f"{int(test_report.loc[GENERAL, 'flagged'])}/{int(test_report.loc[GENERAL, 'prompts'])}",
               "everyday counted %": round(100 * counted.mean(), 2),
               "everyday blocked at once": int(np.asarray(everyday[INSULT], dtype=bool).sum()),
               **{f"yardstick recall {name}": _share(sanction_report, name) for name in SANCTION_CATEGORIES}}
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def choose_rule(comparison: pd.DataFrame, everyday_budget: float = EVERYDAY_BUDGET_PCT,
                min_precision: float = MIN_TEST_PRECISION) -> tuple[str, str]:
    """The calibrated candidate the stated order picks from ``comparison_table``, and why: no everyday message
    blocked at once, at most ``everyday_budget`` % counted and test precision ≥ ``min_precision`` in every
    sanction category; among those, the highest lowest yardstick recall (ties: fewer everyday counted). When
    none qualifies, the fewest blocked, then the fewest counted, with the reason saying so."""
    rows = comparison[comparison.index.str.endswith("calibrated on validation")]
    if rows.empty:
        raise OhloraError("the comparison has no calibrated candidate to choose from", fix="run candidate_rules first")
    lowest_recall = rows[[f"yardstick recall {name}" for name in SANCTION_CATEGORIES]].min(axis=1)
    lowest_precision = rows[[f"test precision {name}" for name in SANCTION_CATEGORIES]].min(axis=1)
    eligible = ((rows["everyday blocked at once"] == 0) & (rows["everyday counted %"] <= everyday_budget)
                & (lowest_precision >= min_precision))
    if eligible.any():
        ranked = pd.DataFrame({"recall": lowest_recall[eligible], "counted": rows.loc[eligible, "everyday counted %"]})
        label = ranked.sort_values(["recall", "counted"], ascending=[False, True]).index[0]
        return label, (f"blocks no everyday message, counts {rows.loc[label, 'everyday counted %']:.2f} % of them, test "
                       f"precision ≥ {min_precision:g}, and the highest lowest recall ({lowest_recall[label]:.3f}) "
                       f"of the {int(eligible.sum())} that qualify")
    label = rows.sort_values(["everyday blocked at once", "everyday counted %"]).index[0]
    return label, "no candidate meets every condition: the fewest blocked, then the fewest counted"


def _share(report: pd.DataFrame, name: str) -> float:
    return round(float(report.loc[name, "flagged_as_own"]) / max(1, int(report.loc[name, "prompts"])), 3)


def everyday_flags(classifier: EthicsClassifier, candidate: Candidate, embeddings: np.ndarray,
                   everyday: pd.DataFrame, head) -> pd.DataFrame:
    """The everyday messages the candidate would count (refusing reply assumed), with their scores."""
    scores = _frame(classifier.scores_from_embeddings(embeddings, candidate.scoring, head))
    flags = rule(scores, True, candidate.thresholds)
    counted = [", ".join(name for name in SANCTION_CATEGORIES if bool(np.asarray(flags[name])[i]))
               for i in range(len(scores))]
    table = pd.DataFrame({"text": everyday["text"].to_numpy(), "kind": everyday["kind"].to_numpy(), "counted": counted})
    table = pd.concat([table, scores.round(3)], axis=1)
    return table[table["counted"] != ""].reset_index(drop=True)


# --- evaluation ---------------------------------------------------------------------------------------

def argmax_predictions(scores: pd.DataFrame) -> pd.Series:
    return scores[list(ETHICS_CATEGORIES)].idxmax(axis=1).rename("predicted")


def argmax_accuracy(gold: pd.Series, predicted: pd.Series) -> tuple[int, int]:
    """``(correct, total)``, comparable with the original's 133/135."""
    return int((np.asarray(gold) == np.asarray(predicted)).sum()), len(gold)


def confusion_matrix(gold: pd.Series, predicted: pd.Series) -> pd.DataFrame:
    """Counts with gold categories as rows and predicted ones as columns, in ETHICS_CATEGORIES order."""
    matrix = pd.crosstab(pd.Series(np.asarray(gold), name="gold"), pd.Series(np.asarray(predicted), name="predicted"))
    return matrix.reindex(index=list(ETHICS_CATEGORIES), columns=list(ETHICS_CATEGORIES), fill_value=0)


def save_confusion(model_dir: Path, matrix: pd.DataFrame) -> Path:
    path = Path(model_dir) / CONFUSION_FILE
    atomic_write_text(path, matrix.to_csv())
    return path


def category_metrics(gold: pd.Series, predicted: pd.Series) -> pd.DataFrame:
    """Precision, recall, F1 and support of each category, from argmax predictions."""
    matrix = confusion_matrix(gold, predicted)
    rows = {}
    for name in ETHICS_CATEGORIES:
        hits = matrix.loc[name, name]
        precision, recall = ratio(hits, matrix[name].sum()), ratio(hits, matrix.loc[name].sum())
        f1 = ratio(2 * precision * recall, precision + recall) if hits else 0.0
        rows[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(matrix.loc[name].sum())}
    return pd.DataFrame.from_dict(rows, orient="index")


def threshold_sweep(scores: pd.DataFrame, gold: pd.Series, veto: float = ORIGINAL_THRESHOLDS[GENERAL],
                    grid: Iterable[float] = SWEEP_GRID) -> pd.DataFrame:
    """Precision / recall / F1 of the rule for each sanction category at each threshold (refusing reply, fixed veto).

    A flag counts as correct only for a prompt of that very category: a politics prompt flagged as love
    would get the wrong sanction.
    """
    gold = np.asarray(gold)
    frames = []
    for name in SANCTION_CATEGORIES:
        def flagged_at(threshold, name=name):
            return rule(scores, True, {**{other: threshold for other in ETHICS_CATEGORIES}, GENERAL: veto})[name]
        frames.append(sweep_thresholds(flagged_at, gold == name, grid).assign(category=name))
    rows = pd.concat(frames, ignore_index=True)
    return rows[["category", "threshold", "flagged", "tp", "fp", "fn", "precision", "recall", "f1"]]


def choose_thresholds(sweep: pd.DataFrame, target_precision: float = TARGET_PRECISION,
                      veto: float = ORIGINAL_THRESHOLDS[GENERAL]) -> tuple[dict[str, float], pd.DataFrame]:
    """Per category: the most recall at precision ≥ target, from the middle of the band of thresholds that
    achieve it (the widest margin either side); best F1 when no threshold reaches the target; the
    original's value when nothing is ever caught. Returns the thresholds and a table of the choice."""
    chosen, table = {GENERAL: veto}, []
    for name in SANCTION_CATEGORIES:
        rows = sweep[sweep["category"] == name]
        good = rows[(rows["precision"] >= target_precision) & (rows["recall"] > 0)]
        if len(good):
            band = good[good["recall"] == good["recall"].max()]
            middle = (band["threshold"].min() + band["threshold"].max()) / 2
            pick = band.loc[(band["threshold"] - middle).abs().idxmin()]
            how = f"most recall at precision ≥ {target_precision:g} (middle of {band['threshold'].min():g}–{band['threshold'].max():g})"
        elif (rows["f1"] > 0).any():
            best = rows[rows["f1"] == rows["f1"].max()]
            pick = best.iloc[len(best) // 2]
            how = f"precision {target_precision:g} unreachable: best F1"
        else:
            pick = nearest(rows, ORIGINAL_THRESHOLDS[name])
            how = "never caught: the original's value"
        chosen[name] = float(pick["threshold"])
        table.append({"category": name, "threshold": chosen[name], "original": ORIGINAL_THRESHOLDS[name],
                      "precision": pick["precision"], "recall": pick["recall"], "f1": pick["f1"], "chosen by": how})
    return checked_thresholds(chosen), pd.DataFrame(table).set_index("category")


def rule_report(scores: pd.DataFrame, gold: pd.Series, thresholds: Mapping[str, float],
                reply: str = REFUSAL_REPLY) -> pd.DataFrame:
    """Per gold category: prompts, how many the rule flags at all, and how many as their own category; and per
    category, ``counted_as``: the prompts of any gold category it counted as that one (precision's denominator)."""
    flags = rule(scores, refused(reply), checked_thresholds(thresholds))
    flagged = pd.DataFrame({name: np.asarray(flags[name], dtype=bool) for name in SANCTION_CATEGORIES})
    gold = np.asarray(gold)
    own = np.array([name in flagged.columns and flagged.iloc[i][name] for i, name in enumerate(gold)], dtype=bool)
    report = pd.DataFrame({"gold": gold, "flagged": flagged.any(axis=1).to_numpy(), "as its own": own})
    report = report.groupby("gold").agg(prompts=("gold", "size"), flagged=("flagged", "sum"),
                                        flagged_as_own=("as its own", "sum")).reindex(list(ETHICS_CATEGORIES))
    report["counted_as"] = flagged.sum().reindex(list(ETHICS_CATEGORIES)).fillna(0).astype(int)
    return report


def rule_summary(report: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """``caught``: sanction-category prompts flagged as their own category; ``false``: 일반 prompts flagged."""
    sanction = report.loc[list(SANCTION_CATEGORIES)]
    return {"caught": (int(sanction["flagged_as_own"].sum()), int(sanction["prompts"].sum())),
            "false": (int(report.loc[GENERAL, "flagged"]), int(report.loc[GENERAL, "prompts"]))}


def rule_table(scores: pd.DataFrame, gold: pd.Series, named_thresholds: Mapping[str, Mapping[str, float]],
               reply: str = REFUSAL_REPLY) -> pd.DataFrame:
    """One row per named set of thresholds: what the rule catches per category and how many 일반 it flags."""
    rows = {}
    for label, values in named_thresholds.items():
        report = rule_report(scores, gold, values, reply)
        summary = rule_summary(report)
        rows[label] = {**{f"{name} caught": f"{report.loc[name, 'flagged_as_own']}/{report.loc[name, 'prompts']}"
                          for name in SANCTION_CATEGORIES},
                       "sanction prompts caught": "{}/{}".format(*summary["caught"]),
                       f"{GENERAL} wrongly flagged": "{}/{}".format(*summary["false"])}
    return pd.DataFrame.from_dict(rows, orient="index")


def verdict_table(classifier: EthicsClassifier, named_texts: Mapping[str, str], reply: str = REFUSAL_REPLY):
    """For each named text: its length, scores (or the error for an empty one) and what ``check`` returns."""
    rows = {}
    for label, text in named_texts.items():
        row = {"chars": len(text), **{name: float("nan") for name in ETHICS_CATEGORIES}, "scores()": "ok"}
        try:
            row.update({name: round(value, 3) for name, value in classifier.scores(text).items()})
        except OhloraError as error:
            row["scores()"] = f"error: {error.problem}"
        rows[label] = {**row, "check()": ", ".join(classifier.check(text, reply)) or "-"}
    return pd.DataFrame.from_dict(rows, orient="index")


def argmax_errors(texts: pd.Series, gold: pd.Series, scores: pd.DataFrame) -> pd.DataFrame:
    """Misclassified prompts, the most confidently wrong first (margin = predicted score − gold score)."""
    predicted = argmax_predictions(scores)
    frame = pd.DataFrame({"text": np.asarray(texts), "gold": np.asarray(gold), "predicted": predicted.to_numpy()})
    values = scores.to_numpy()
    columns = {name: i for i, name in enumerate(ETHICS_CATEGORIES)}
    frame["gold score"] = [values[i, columns[g]] for i, g in enumerate(frame["gold"])]
    frame["predicted score"] = [values[i, columns[p]] for i, p in enumerate(frame["predicted"])]
    frame["margin"] = frame["predicted score"] - frame["gold score"]
    wrong = frame[frame["gold"] != frame["predicted"]]
    return wrong.sort_values("margin", ascending=False).reset_index(drop=True)


def rule_errors(texts: pd.Series, gold: pd.Series, scores: pd.DataFrame, thresholds: Mapping[str, float],
                reply: str = REFUSAL_REPLY) -> pd.DataFrame:
    """Prompts the rule gets wrong: 일반 flagged (false sanction), sanction prompts not flagged as their own."""
    flags = rule(scores, refused(reply), checked_thresholds(thresholds))
    rows = []
    for i, (text, category) in enumerate(zip(texts, gold)):
        counted = [name for name in SANCTION_CATEGORIES if bool(np.asarray(flags[name])[i])]
        if (category == GENERAL and counted) or (category != GENERAL and category not in counted):
            rows.append({"text": text, "gold": category, "counted": ", ".join(counted) or "-",
                         "error": "false sanction" if category == GENERAL else "missed",
                         **{name: float(scores.iloc[i][name]) for name in ETHICS_CATEGORIES}})
    return pd.DataFrame(rows, columns=["text", "gold", "counted", "error", *ETHICS_CATEGORIES])


# --- plots ---------------------------------------------------------------------------------------------

def plot_history(ax, history: pd.DataFrame) -> None:
    """Train and validation loss per epoch."""
    for column, label in (("train_loss", "train"), ("valid_loss", "validation")):
        if column in history:
            ax.plot(history["epoch"], history[column], marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("CosineSimilarityLoss (MSE)")
    ax.legend()


def plot_confusion(ax, matrix: pd.DataFrame, title: str = "") -> None:
    ax.imshow(matrix.to_numpy(), cmap="Blues")
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=30)
    ax.set_yticks(range(len(matrix.index)), matrix.index)
    ax.set_xlabel("predicted (argmax)")
    ax.set_ylabel("gold")
    peak = matrix.to_numpy().max() or 1
    for (i, j), count in np.ndenumerate(matrix.to_numpy()):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    ax.set_title(title)


def plot_threshold_sweep(axes, rows: pd.DataFrame, chosen: Mapping[str, float],
                         reference: Mapping[str, float] | None = ORIGINAL_THRESHOLDS) -> None:
    """Top row: precision–recall curve per category; bottom row: precision and recall against the threshold.
    ● marks the chosen threshold, × the reference (the original's; drawn at recall 0, precision 1 when it
    flags nothing); ``reference=None`` leaves it out (scores on another scale)."""
    for column, name in enumerate(SANCTION_CATEGORIES):
        marks = [Mark(chosen[name], "chosen")] + ([Mark(reference[name], "original", "x", "black")] if reference else [])
        precision_recall_panels(axes[0][column], axes[1][column], rows[rows["category"] == name], marks, title=name)


def plot_comparison(axes, table: pd.DataFrame, everyday_target: float = 1.0, recall_target: float = 0.9) -> None:
    """Left: everyday messages counted (worst case) per candidate, the target dashed; right: the yardstick's
    sanction recall per category and candidate, the target dashed."""
    labels = list(table.index)
    y = np.arange(len(labels))
    axes[0].barh(y, table["everyday counted %"], color="#D6612D")
    axes[0].axvline(everyday_target, linestyle="--", color="black", linewidth=1)
    axes[0].set(yticks=y, yticklabels=labels, xlabel="everyday messages counted, % (refusing reply assumed)")
    axes[0].invert_yaxis()
    width = 0.8 / len(SANCTION_CATEGORIES)
    for i, name in enumerate(SANCTION_CATEGORIES):
        axes[1].barh(y + (i - 1) * width, table[f"yardstick recall {name}"], width, label=name)
    axes[1].axvline(recall_target, linestyle="--", color="black", linewidth=1)
    axes[1].set(yticks=y, yticklabels=[""] * len(labels), xlim=(0, 1), xlabel="yardstick sanction messages caught (recall)")
    axes[1].invert_yaxis()
    axes[1].legend(loc="lower left", fontsize=8)


# --- command line -------------------------------------------------------------------------------------

def calibrate(classifier: EthicsClassifier, dataset: pd.DataFrame, scoring: str = DEFAULT_SCORING, mode: str = "calibrated",
              seed: int = 42, budgets: Mapping[str, float] = FALSE_FLAG_BUDGET) -> pd.DataFrame:
    """Fit the head on train (``head`` scoring), calibrate ``scoring`` on validation (``mode`` calibrated) or use the original's
    thresholds (``original``, names only), store the choice and the test confusion matrix next to the model."""
    if mode not in ("calibrated", "original"):
        raise OhloraError(f"unknown thresholds mode {mode!r}", fix='use "calibrated" or "original"')
    if mode == "original" and scoring != "names":
        raise OhloraError("the original's thresholds are for the names scoring", fix='use scoring="names"')
    train, valid, test = ethics_splits(dataset)
    head = fit_head(classifier.embed_texts(train["text"]), train["category"], seed=seed) if scoring == "head" else None
    valid_scores = _frame(classifier.scores_from_embeddings(classifier.embed_texts(valid["text"]), scoring, head))
    thresholds, table = calibrate_on_validation(valid_scores, valid["category"], budgets)
    if mode == "original":
        thresholds = dict(ORIGINAL_THRESHOLDS)
    details = {"chosen_on": f"validation split ({len(valid)} prompts)", "budgets": dict(budgets),
               "calibration": json.loads(table.to_json(orient="index", force_ascii=False))}
    classifier.set_thresholds(thresholds, mode, details, scoring, head)
    test_scores = classifier.score_frame(test["text"])
    save_confusion(classifier.model_dir, confusion_matrix(test["category"], argmax_predictions(test_scores)))
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ohlora_utils.ethics_study",
                                     description="Train the S-BERT ethics classifier and store its scoring and thresholds.")
    parser.add_argument("--profile", default=None, help="embedded | paper | tiny (default: $OHLORA_PROFILE)")
    parser.add_argument("--preset", default="", help="quick | default | paper (default: $OHLORA_PRESET)")
    parser.add_argument("--epochs", type=int, default=0, help="override the preset's epochs")
    parser.add_argument("--scoring", default=DEFAULT_SCORING, help="names | margin | head (see docs/ethics.md)")
    parser.add_argument("--thresholds", default="calibrated", help="calibrated (on validation) or original (names only)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    with exit_on_user_error(parser.prog):
        from .models import provision

        profile = get_profile(args.profile)
        provision(profile)
        train_ethics(profile, preset_config(args.preset, args.epochs, args.seed))
        classifier = load_classifier(default_model_dir())
        print(calibrate(classifier, load_ethics(), args.scoring, args.thresholds, args.seed).to_string())
        print(f"{classifier.scoring} scoring, thresholds ({classifier.thresholds_source}): {classifier.thresholds}"
              f" → {classifier.model_dir}")


if __name__ == "__main__":
    main()
