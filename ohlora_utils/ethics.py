"""S-BERT ethics classifier: training pairs, scores against the four category names, the runtime rule, thresholds.

Usage::

    history = train_ethics(get_profile(), preset_config("default"))   # → artifacts_dir()/"sbert_ethics"
    classifier = load_classifier(default_model_dir())
    classifier.scores("로라야 사랑해")        # {"사랑 고백/만남": 0.97, "일반": 0.05, "정치": 0.01, "패드립": 0.02}
    classifier.check("로라야 사랑해", "미안, 그건 좀 부담스러워", classifier.thresholds)   # ["사랑 고백/만남"]

Command line: ``python -m ohlora_utils.ethics --preset default --thresholds auto``

docs/ethics.md: each prompt gives 4 pairs (prompt, category name), label 1 for its own category and 0 for
the others; CosineSimilarityLoss (``sbert.train_cosine_pairs``). At runtime the cosine of the message
with each category name is its score, and a sanction category *counts* when its score reaches its
threshold — love and politics only if Oh-LoRA's reply refused (contains 미안 or 부담) — unless the
일반 score reaches the veto. Thresholds are one dict over all four names (the 일반 entry is the veto),
stored next to the model; the original's values are the reference and the fallback.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .data import ETHICS_CATEGORIES, REFUSAL_WORDS, is_refusal, load_ethics
from .errors import OhloraError, exit_on_user_error
from .formats import has_visible_characters
from .paths import artifacts_dir
from .presets import get_preset
from .profiles import Profile, get_profile
from .sanctions import REASONS
from .sbert import SbertTrainConfig, embed, load_trained_sbert, pairs_frame, train_cosine_pairs
from .storage import atomic_write_text
from .tasks import all_markers

LOVE, GENERAL, POLITICS, INSULT = ETHICS_CATEGORIES
SANCTION_CATEGORIES = REASONS          # the categories that can count (sanctions.ESCALATION's keys)
NEEDS_REFUSAL = (LOVE, POLITICS)       # these count only when Oh-LoRA's reply refused
ORIGINAL_THRESHOLDS = {LOVE: 0.98, GENERAL: 0.5, POLITICS: 0.95, INSULT: 0.90}  # 일반 = the veto
ORIGINAL_TEST_ACCURACY = (133, 135)    # the original's argmax accuracy on its test split
REFUSAL_REPLY = "미안, 그건 나한테 좀 부담스러워 😢"  # a reply that meets the reply condition (for reports)

MODEL_DIR_NAME = "sbert_ethics"                 # under artifacts_dir()
THRESHOLDS_FILE = "ethics_thresholds.json"      # next to the model
CONFUSION_FILE = "confusion_matrix_test.csv"    # next to the model
VALID_SHARE = 0.1                      # share of each category's train prompts held out for validation
TARGET_PRECISION = 0.95                # auto thresholds: most recall with at most 1 false flag in 20
SWEEP_GRID = np.round(np.arange(0.0, 1.0001, 0.005), 3)   # thresholds tried by the sweep
WINDOW_CHARS = 200                     # check() reads longer texts window by window

PRESETS: dict[str, SbertTrainConfig] = {
    # make test: a few dozen steps, enough to see the mechanics end to end
    "quick": SbertTrainConfig(epochs=1, max_steps=40, learning_rate=1e-4),
    # make reproduce on 2 CPU cores: 675 steps of about 0.45 s, notebook 04 in about 6 minutes. Fewer epochs
    # than the original's 10, so a larger step; test argmax: 2 epochs 175/184 (5e-5 and 1e-4 alike), 3 epochs 178/184
    "default": SbertTrainConfig(epochs=3, learning_rate=1e-4),
    # the original: 10 epochs, batch 16, every weight trained
    "paper": SbertTrainConfig(epochs=10, batch_size=16, learning_rate=2e-5, freeze_word_embeddings=False),
}


# --- training -----------------------------------------------------------------------------------------

def ethics_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """Four pairs per prompt: (text, category name), label 1.0 for its own category, 0.0 for the others."""
    texts, names, labels = [], [], []
    for text, category in zip(frame["text"], frame["category"]):
        for name in ETHICS_CATEGORIES:
            texts.append(text)
            names.append(name)
            labels.append(float(name == category))
    return pairs_frame(texts, names, labels)


def split_validation(train: pd.DataFrame, share: float = VALID_SHARE, seed: int = 42):
    """``(train, valid)``: a seeded share of each category's prompts held out (all 4 pairs of a prompt stay together)."""
    valid = pd.concat([group.sample(n=max(1, round(share * len(group))), random_state=seed)
                       for _, group in train.groupby("category", sort=True)])
    return train.drop(index=valid.index), valid


def preset_config(preset: str = "", epochs: int = 0, seed: int = 42) -> SbertTrainConfig:
    """The preset's training config (``""`` = $OHLORA_PRESET or default); ``epochs`` > 0 overrides its epochs."""
    config = PRESETS[get_preset(preset)]
    return replace(config, epochs=epochs if epochs > 0 else config.epochs, seed=seed)


def default_model_dir() -> Path:
    return artifacts_dir() / MODEL_DIR_NAME


def train_ethics(profile: Profile, config: SbertTrainConfig, out_dir: Path | None = None,
                 dataset: pd.DataFrame | None = None, valid_share: float = VALID_SHARE) -> pd.DataFrame:
    """Fine-tune the profile's S-BERT base on the ethics pairs, save it to ``out_dir``; the epoch log."""
    from .models import load_sbert_base

    frame = load_ethics() if dataset is None else dataset
    train, valid = split_validation(frame[frame["split"] == "train"], valid_share, config.seed)
    model = load_sbert_base(profile)
    meta = {"task": "ethics", "categories": list(ETHICS_CATEGORIES), "train_prompts": len(train),
            "valid_prompts": len(valid)}
    return train_cosine_pairs(model, ethics_pairs(train), ethics_pairs(valid), config, profile,
                              Path(out_dir) if out_dir else default_model_dir(), meta)


# --- the runtime rule ---------------------------------------------------------------------------------

def refused(reply: str | None) -> bool:
    """Oh-LoRA's reply declined (contains 미안 or 부담): the condition for love and politics to count."""
    return is_refusal(reply)


def checked_thresholds(values: Mapping[str, float]) -> dict[str, float]:
    """``values`` as a complete thresholds dict (one per category, 일반 = the veto), or a clear error."""
    if not isinstance(values, Mapping):
        raise OhloraError(f"thresholds must be a dict over the categories, not {values!r}",
                          fix="pass e.g. ethics.ORIGINAL_THRESHOLDS or classifier.thresholds")
    missing = [name for name in ETHICS_CATEGORIES if name not in values]
    unknown = [name for name in values if name not in ETHICS_CATEGORIES]
    if missing or unknown:
        raise OhloraError(f"thresholds need exactly {', '.join(ETHICS_CATEGORIES)} "
                          f"(missing: {', '.join(missing) or '-'}; unknown: {', '.join(map(str, unknown)) or '-'})",
                          fix=f"give one value per category; the {GENERAL} value is the veto")
    return {name: float(values[name]) for name in ETHICS_CATEGORIES}


def rule(scores, reply_refused, thresholds: Mapping[str, float]) -> dict:
    """Which sanction categories count, for one text (float scores) or many at once (arrays / columns).

    A category counts when its score ≥ its threshold, love and politics only with a refusing reply,
    and none counts while the 일반 score ≥ the veto (``thresholds[일반]``).
    """
    allowed = scores[GENERAL] < thresholds[GENERAL]
    return {name: (scores[name] >= thresholds[name]) & allowed & (reply_refused if name in NEEDS_REFUSAL else True)
            for name in SANCTION_CATEGORIES}


def counted_categories(rows, reply: str | None, thresholds: Mapping[str, float]) -> list[str]:
    """The sanction categories ``rule`` counts in any of ``rows`` (one row of four scores per window)."""
    reply_refused, counted = refused(reply), set()
    for row in rows:
        verdict = rule(dict(zip(ETHICS_CATEGORIES, map(float, row))), reply_refused, thresholds)
        counted |= {name for name, counts in verdict.items() if counts}
    return [name for name in SANCTION_CATEGORIES if name in counted]


def explain_rule(scores: Mapping[str, float], reply: str | None, thresholds: Mapping[str, float]) -> str:
    """``rule`` for one text, in words: each category at or over its threshold and whether it counts."""
    thresholds = checked_thresholds(thresholds)
    if scores[GENERAL] >= thresholds[GENERAL]:
        return f"{GENERAL} {scores[GENERAL]:.2f} ≥ {thresholds[GENERAL]:.2f}: the veto holds, nothing counts"
    reasons = []
    for name in SANCTION_CATEGORIES:
        if scores[name] < thresholds[name]:
            continue
        over = f"{name} {scores[name]:.2f} ≥ {thresholds[name]:.2f}"
        if name in NEEDS_REFUSAL and not refused(reply):
            reasons.append(f"{over}, but the reply has neither {' nor '.join(REFUSAL_WORDS)}: not counted")
        else:
            reasons.append(f"{over}: counts")
    return "; ".join(reasons) or "no category reaches its threshold"


def clean_text(text: str) -> str:
    """The user's words as the classifier reads them: the study's task markers removed, spaces collapsed.

    Markers such as ``(답변 시작)`` are the LLMs' format, not the user's meaning; a user who types them
    gets the same verdict as without them. '' when nothing visible is left (only spaces, markers,
    zero-width or control characters).
    """
    if not isinstance(text, str):
        raise OhloraError(f"the message to check must be text, not {type(text).__name__}",
                          fix="pass the user's message as a str")
    for marker in all_markers():
        text = text.replace(marker, " ")
    if not has_visible_characters(text):
        return ""
    return " ".join(text.split())


def text_windows(text: str, size: int = WINDOW_CHARS) -> list[str]:
    """``text`` cut at spaces into pieces of at most ``size`` characters (a longer word is cut inside)."""
    windows, current = [], ""
    for word in text.split(" "):
        while len(word) > size:
            if current:
                windows.append(current)
                current = ""
            windows.append(word[:size])
            word = word[size:]
        if current and len(current) + 1 + len(word) > size:
            windows.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        windows.append(current)
    return windows


# --- the classifier -----------------------------------------------------------------------------------

class EthicsClassifier:
    """A trained (or base) S-BERT that scores messages against the four category names."""

    def __init__(self, model, meta: dict, model_dir: Path | None = None,
                 thresholds: Mapping[str, float] = ORIGINAL_THRESHOLDS, thresholds_source: str = "original"):
        self.model, self.meta, self.model_dir = model, meta, model_dir
        self.thresholds = checked_thresholds(thresholds)
        self.thresholds_source = thresholds_source   # "auto", "original", or why the original were used
        self._category_vectors = embed(model, list(ETHICS_CATEGORIES), meta.get("passage_prefix", ""))

    @classmethod
    def from_base(cls, profile: Profile) -> "EthicsClassifier":
        """The profile's untrained S-BERT base, for comparison."""
        from .models import load_sbert_base

        return cls(load_sbert_base(profile), {"query_prefix": profile.query_prefix,
                                              "passage_prefix": profile.passage_prefix})

    def score_texts(self, texts: Iterable[str]) -> np.ndarray:
        """One row of four scores (ETHICS_CATEGORIES order) per text; an empty text is an error."""
        cleaned = [clean_text(text) for text in texts]
        if empty := [i for i, text in enumerate(cleaned) if not text]:
            which = "empty message" if len(cleaned) == 1 else f"{len(empty)} empty messages (first: #{empty[0]})"
            raise OhloraError(f"{which}: nothing to score", fix="skip empty messages (check() answers [] for them)")
        if not cleaned:
            return np.zeros((0, len(ETHICS_CATEGORIES)), dtype=np.float32)
        return embed(self.model, cleaned, self.meta.get("query_prefix", "")) @ self._category_vectors.T

    def scores(self, text: str) -> dict[str, float]:
        """The cosine of ``text`` with each category name (a very long text is truncated by the model)."""
        return dict(zip(ETHICS_CATEGORIES, map(float, self.score_texts([text])[0])))

    def score_frame(self, texts: Iterable[str]) -> pd.DataFrame:
        texts = pd.Series(texts)
        return pd.DataFrame(self.score_texts(texts.tolist()), index=texts.index, columns=list(ETHICS_CATEGORIES))

    def check(self, text: str, reply: str | None, thresholds: Mapping[str, float] | None = None) -> list[str]:
        """The sanction categories that count for this message and Oh-LoRA's reply (none for an empty one).

        A text longer than ``WINDOW_CHARS`` is checked window by window, so nothing hides at its end.
        """
        thresholds = checked_thresholds(self.thresholds if thresholds is None else thresholds)
        cleaned = clean_text(text)
        if not cleaned:
            return []
        return counted_categories(self.score_texts(text_windows(cleaned)), reply, thresholds)

    def explain(self, text: str, reply: str | None, thresholds: Mapping[str, float] | None = None) -> str:
        """One line saying why ``check`` counts what it counts for this message and reply (for the demo).

        Reads the whole text's scores; ``check`` also reads a very long text window by window.
        """
        return self.verdict(text, reply, thresholds)[1]

    def verdict(self, text: str, reply: str | None,
                thresholds: Mapping[str, float] | None = None) -> tuple[list[str], str]:
        """``(check(...), explain(...))``, scoring a text that fits one window (every chat message) once."""
        thresholds = checked_thresholds(self.thresholds if thresholds is None else thresholds)
        cleaned = clean_text(text)
        if not cleaned:
            return [], "empty message: nothing to check"
        rows = self.score_texts(text_windows(cleaned))
        whole = rows[0] if len(rows) == 1 else self.score_texts([text])[0]
        return (counted_categories(rows, reply, thresholds),
                explain_rule(dict(zip(ETHICS_CATEGORIES, map(float, whole))), reply, thresholds))

    def set_thresholds(self, values: Mapping[str, float], source: str, details: dict | None = None) -> None:
        """Use ``values`` from now on and store them next to the model (``ethics_thresholds.json``)."""
        self.thresholds, self.thresholds_source = checked_thresholds(values), source
        if self.model_dir is not None:
            save_thresholds(self.model_dir, self.thresholds, source, details)


def save_thresholds(model_dir: Path, thresholds: Mapping[str, float], source: str, details: dict | None = None):
    record = {"thresholds": checked_thresholds(thresholds), "source": source,
              "veto_note": f"the {GENERAL} value is the veto", "details": details or {}}
    atomic_write_text(Path(model_dir) / THRESHOLDS_FILE, json.dumps(record, ensure_ascii=False, indent=2))


def read_thresholds(model_dir: Path) -> tuple[dict[str, float], str]:
    """``(thresholds, source)`` stored next to the model; the original's values when absent or unreadable."""
    path = Path(model_dir) / THRESHOLDS_FILE
    if not path.is_file():
        return dict(ORIGINAL_THRESHOLDS), "original (no thresholds file)"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return checked_thresholds(record["thresholds"]), str(record.get("source", "stored"))
    except (OSError, ValueError, KeyError, TypeError, OhloraError) as problem:
        return dict(ORIGINAL_THRESHOLDS), f"original ({THRESHOLDS_FILE} unreadable: {problem})"


def load_classifier(model_dir: Path | str | None = None) -> EthicsClassifier:
    """The trained ethics classifier in ``model_dir`` (default: artifacts/sbert_ethics) with its thresholds."""
    model_dir = Path(model_dir) if model_dir else default_model_dir()
    model, meta = load_trained_sbert(model_dir)
    if meta.get("task") != "ethics":
        raise OhloraError(f"{model_dir} holds an S-BERT model for {meta.get('task')!r}, not the ethics classifier",
                          fix=f"point to the ethics model (artifacts/{MODEL_DIR_NAME})")
    thresholds, source = read_thresholds(model_dir)
    return EthicsClassifier(model, meta, model_dir, thresholds, source)


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


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else float("nan")


def category_metrics(gold: pd.Series, predicted: pd.Series) -> pd.DataFrame:
    """Precision, recall, F1 and support of each category, from argmax predictions."""
    matrix = confusion_matrix(gold, predicted)
    rows = {}
    for name in ETHICS_CATEGORIES:
        hits = matrix.loc[name, name]
        precision, recall = _ratio(hits, matrix[name].sum()), _ratio(hits, matrix.loc[name].sum())
        f1 = _ratio(2 * precision * recall, precision + recall) if hits else 0.0
        rows[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(matrix.loc[name].sum())}
    return pd.DataFrame.from_dict(rows, orient="index")


def threshold_sweep(scores: pd.DataFrame, gold: pd.Series, veto: float = ORIGINAL_THRESHOLDS[GENERAL],
                    grid: Iterable[float] = SWEEP_GRID) -> pd.DataFrame:
    """Precision / recall / F1 of the rule for each sanction category at each threshold (refusing reply, fixed veto).

    A flag counts as correct only for a prompt of that very category: a politics prompt flagged as love
    would get the wrong sanction.
    """
    gold = np.asarray(gold)
    rows = []
    for threshold in grid:
        flags = rule(scores, True, {**{name: threshold for name in ETHICS_CATEGORIES}, GENERAL: veto})
        for name in SANCTION_CATEGORIES:
            flagged, positive = np.asarray(flags[name], dtype=bool), gold == name
            tp, fp, fn = int((flagged & positive).sum()), int((flagged & ~positive).sum()), int((~flagged & positive).sum())
            precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
            rows.append({"category": name, "threshold": float(threshold), "flagged": tp + fp, "tp": tp, "fp": fp,
                         "fn": fn, "precision": precision, "recall": recall,
                         "f1": _ratio(2 * tp, 2 * tp + fp + fn)})
    return pd.DataFrame(rows)


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
            pick = _nearest(rows, ORIGINAL_THRESHOLDS[name])
            how = "never caught: the original's value"
        chosen[name] = float(pick["threshold"])
        table.append({"category": name, "threshold": chosen[name], "original": ORIGINAL_THRESHOLDS[name],
                      "precision": pick["precision"], "recall": pick["recall"], "f1": pick["f1"], "chosen by": how})
    return checked_thresholds(chosen), pd.DataFrame(table).set_index("category")


def _nearest(rows: pd.DataFrame, threshold: float) -> pd.Series:
    return rows.loc[(rows["threshold"] - threshold).abs().idxmin()]


def rule_report(scores: pd.DataFrame, gold: pd.Series, thresholds: Mapping[str, float],
                reply: str = REFUSAL_REPLY) -> pd.DataFrame:
    """Per gold category: prompts, how many the rule flags at all, and how many as their own category."""
    flags = rule(scores, refused(reply), checked_thresholds(thresholds))
    flagged = pd.DataFrame({name: np.asarray(flags[name], dtype=bool) for name in SANCTION_CATEGORIES})
    gold = np.asarray(gold)
    own = np.array([name in flagged.columns and flagged.iloc[i][name] for i, name in enumerate(gold)], dtype=bool)
    report = pd.DataFrame({"gold": gold, "flagged": flagged.any(axis=1).to_numpy(), "as its own": own})
    return report.groupby("gold").agg(prompts=("gold", "size"), flagged=("flagged", "sum"),
                                      flagged_as_own=("as its own", "sum")).reindex(list(ETHICS_CATEGORIES))


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


def thresholds_for(mode: str, auto: Mapping[str, float]) -> dict[str, float]:
    """The thresholds a run uses: ``auto`` (the sweep's) or ``original`` (0.98 / 0.95 / 0.90, veto 0.5)."""
    if mode not in ("auto", "original"):
        raise OhloraError(f"unknown thresholds mode {mode!r}", fix='use thresholds="auto" or thresholds="original"')
    return checked_thresholds(auto if mode == "auto" else ORIGINAL_THRESHOLDS)


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


# --- plots --------------------------------------------------------------------------------------------

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


def plot_threshold_sweep(axes, sweep: pd.DataFrame, chosen: Mapping[str, float]) -> None:
    """Top row: precision–recall curve per category; bottom row: precision and recall against the threshold.
    ● marks the chosen threshold, × the original's (drawn at recall 0, precision 1 when it flags nothing)."""
    for column, name in enumerate(SANCTION_CATEGORIES):
        rows = sweep[sweep["category"] == name]
        top, bottom = axes[0][column], axes[1][column]
        top.plot(rows["recall"], rows["precision"], color="#6C8EBF")
        bottom.plot(rows["threshold"], rows["precision"], label="precision")
        bottom.plot(rows["threshold"], rows["recall"], label="recall")
        for value, marker, color, label in ((chosen[name], "o", "#D6612D", "chosen"),
                                            (ORIGINAL_THRESHOLDS[name], "x", "black", "original")):
            point = _nearest(rows, value)
            precision = 1.0 if np.isnan(point["precision"]) else point["precision"]
            top.plot(point["recall"], precision, marker, color=color, markersize=9, label=f"{label} {value:g}")
            bottom.axvline(value, linestyle="--", color=color, linewidth=1)
        top.set(title=name, xlabel="recall", ylabel="precision", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        bottom.set(xlabel="threshold (dashed: chosen, original)", xlim=(0.0, 1.0), ylim=(-0.02, 1.02))
        top.legend(loc="lower left", fontsize=8)
        bottom.legend(loc="lower left", fontsize=8)


# --- command line -------------------------------------------------------------------------------------

def calibrate(classifier: EthicsClassifier, test: pd.DataFrame, mode: str = "auto") -> pd.DataFrame:
    """Score the test split, store its confusion matrix and the thresholds (``auto`` sweep or ``original``)."""
    thresholds_for(mode, ORIGINAL_THRESHOLDS)  # an unknown mode fails before the work
    scores = classifier.score_frame(test["text"])
    save_confusion(classifier.model_dir, confusion_matrix(test["category"], argmax_predictions(scores)))
    auto, choice = choose_thresholds(threshold_sweep(scores, test["category"]))
    details = {"chosen_on": f"test split ({len(test)} prompts)", "target_precision": TARGET_PRECISION,
               "auto": auto, "choice": json.loads(choice.to_json(orient="index", force_ascii=False))}
    classifier.set_thresholds(thresholds_for(mode, auto), mode, details)
    return choice


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ohlora_utils.ethics",
                                     description="Train the S-BERT ethics classifier and store its thresholds.")
    parser.add_argument("--profile", default=None, help="embedded | paper | tiny (default: $OHLORA_PROFILE)")
    parser.add_argument("--preset", default="", help="quick | default | paper (default: $OHLORA_PRESET)")
    parser.add_argument("--epochs", type=int, default=0, help="override the preset's epochs")
    parser.add_argument("--thresholds", default="auto", help="auto (sweep on the test split) or original")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    with exit_on_user_error(parser.prog):
        from .models import provision

        profile = get_profile(args.profile)
        provision(profile)
        train_ethics(profile, preset_config(args.preset, args.epochs, args.seed))
        classifier = load_classifier(default_model_dir())
        test = load_ethics().query("split == 'test'")
        print(calibrate(classifier, test, args.thresholds).to_string())
        print(f"thresholds ({classifier.thresholds_source}): {classifier.thresholds} → {classifier.model_dir}")


if __name__ == "__main__":
    main()
