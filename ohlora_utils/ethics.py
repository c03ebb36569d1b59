"""The ethics check a chat turn runs: score the user's own words, apply the rule, read the thresholds.

Usage::

    classifier = load_classifier(artifacts_dir() / "sbert_ethics")
    classifier.scores("로라야 사랑해")        # {"사랑 고백/만남": 0.97, "일반": 0.02, "정치": 0.00, "패드립": 0.01}
    classifier.check("로라야 사랑해", "미안, 그건 좀 부담스러워")   # ["사랑 고백/만남"]

docs/ethics.md: a fine-tuned Sentence-BERT embeds the message; a *scoring* turns the embedding into one score
per category — ``names`` (the original: cosine with each category name), ``margin`` (that cosine minus the
일반 cosine) or ``head`` (a softmax classification head on the embedding, ``ethics_head.json``). A sanction
category *counts* when its score reaches its threshold — love and politics only if Oh-LoRA's reply refused
(contains 미안 or 부담) — unless the 일반 score reaches the veto. The scoring, the thresholds (one dict over
all four names; the 일반 entry is the veto) and how they were chosen are stored next to the model in
``ethics_thresholds.json``; the original's values are the fallback. Training, calibration and the study
of the scorings live in ``ethics_study``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .data import ETHICS_CATEGORIES, REFUSAL_WORDS, is_refusal
from .errors import OhloraError
from .formats import has_visible_characters
from .paths import artifacts_dir
from .sanctions import REASONS
from .sbert import embed, load_trained_sbert
from .storage import atomic_write_text
from .tasks import all_markers

LOVE, GENERAL, POLITICS, INSULT = ETHICS_CATEGORIES
SANCTION_CATEGORIES = REASONS          # the categories that can count (sanctions.ESCALATION's keys)
NEEDS_REFUSAL = (LOVE, POLITICS)       # these count only when Oh-LoRA's reply refused
ORIGINAL_THRESHOLDS = {LOVE: 0.98, GENERAL: 0.5, POLITICS: 0.95, INSULT: 0.90}  # 일반 = the veto
SCORINGS = ("names", "margin", "head")  # how an embedding becomes four scores (see the module docstring)
REFUSAL_REPLY = "미안, 그건 나한테 좀 부담스러워 😢"  # a reply that meets the reply condition (for reports)

MODEL_DIR_NAME = "sbert_ethics"                 # under artifacts_dir()
THRESHOLDS_FILE = "ethics_thresholds.json"      # next to the model: scoring, thresholds, how they were chosen
HEAD_FILE = "ethics_head.json"                  # next to the model: the classification head (scoring "head")
WINDOW_CHARS = 200                     # check() reads longer texts window by window


def default_model_dir() -> Path:
    return artifacts_dir() / MODEL_DIR_NAME


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


# --- the scorings ---------------------------------------------------------------------------------------

def head_probabilities(embeddings: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Softmax of a linear head over the embeddings: one row of four probabilities per text."""
    logits = embeddings @ np.asarray(weight, dtype=np.float32).T + np.asarray(bias, dtype=np.float32)
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def margin_scores(cosines: np.ndarray) -> np.ndarray:
    """Each category's cosine minus the 일반 cosine; the 일반 column is 0, so the veto (≥ 0.5) never holds."""
    general = list(ETHICS_CATEGORIES).index(GENERAL)
    margins = cosines - cosines[:, [general]]
    margins[:, general] = 0.0
    return margins


def save_head(model_dir: Path, weight: np.ndarray, bias: np.ndarray, details: dict | None = None) -> Path:
    """Store a classification head (4 × embedding size, 4) next to the model, atomically."""
    record = {"categories": list(ETHICS_CATEGORIES), "weight": np.asarray(weight, dtype=float).round(6).tolist(),
              "bias": np.asarray(bias, dtype=float).round(6).tolist(), "details": details or {}}
    path = Path(model_dir) / HEAD_FILE
    atomic_write_text(path, json.dumps(record, ensure_ascii=False))
    return path


def read_head(model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(weight, bias)`` of the head stored next to the model; a clear error when absent or damaged."""
    path = Path(model_dir) / HEAD_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        weight, bias = np.asarray(record["weight"], dtype=np.float32), np.asarray(record["bias"], dtype=np.float32)
        if record["categories"] != list(ETHICS_CATEGORIES) or weight.ndim != 2 or weight.shape[0] != 4 or bias.shape != (4,):
            raise ValueError("categories or shapes do not match the four categories")
    except (OSError, ValueError, KeyError, TypeError) as problem:
        raise OhloraError(f"the ethics thresholds use the classification head, but {path} is missing or damaged ({problem})",
                          fix="run notebook 04 again (make reproduce), which fits and stores the head") from None
    return weight, bias


def refusal_wanted(counted_if_declined: list[str]) -> bool | None:
    """Whether her reply should decline, from what would count if it did (``rule``): yes where love or
    politics would (they count only then), no where nothing would, and no preference where only 패드립 would
    (it counts whatever she says)."""
    if any(name in NEEDS_REFUSAL for name in counted_if_declined):
        return True
    return None if counted_if_declined else False


@dataclass(frozen=True)
class MessageScores:
    """One message's scores (``EthicsClassifier.score_message``): four per window, which ``check`` reads so
    that nothing hides at the end of a long text, and the whole text's four, which the explanation reads."""
    windows: np.ndarray          # one row of ETHICS_CATEGORIES scores per window; no rows for an empty message
    whole: np.ndarray | None     # the whole text's scores; None for an empty message


# --- the classifier -----------------------------------------------------------------------------------

class EthicsClassifier:
    """A trained (or base) S-BERT and a scoring that turns a message into one score per category."""

    def __init__(self, model, meta: dict, model_dir: Path | None = None,
                 thresholds: Mapping[str, float] = ORIGINAL_THRESHOLDS, thresholds_source: str = "original",
                 scoring: str = "names", head: tuple[np.ndarray, np.ndarray] | None = None):
        self.model, self.meta, self.model_dir = model, meta, model_dir
        self.thresholds = checked_thresholds(thresholds)
        self.thresholds_source = thresholds_source   # how they were chosen, or why the original were used
        self.scoring = checked_scoring(scoring)
        self.head = required_head(self.scoring, head)
        self._category_vectors = embed(model, list(ETHICS_CATEGORIES), meta.get("passage_prefix", ""))

    @classmethod
    def from_base(cls, profile) -> "EthicsClassifier":
        """The profile's untrained S-BERT base, for comparison."""
        from .models import load_sbert_base

        return cls(load_sbert_base(profile), {"query_prefix": profile.query_prefix,
                                              "passage_prefix": profile.passage_prefix})

    def embed_texts(self, texts: Iterable[str]) -> np.ndarray:
        """L2-normalised embeddings of the users' own words (markers removed); an empty text is an error."""
        cleaned = [clean_text(text) for text in texts]
        if empty := [i for i, text in enumerate(cleaned) if not text]:
            which = "empty message" if len(cleaned) == 1 else f"{len(empty)} empty messages (first: #{empty[0]})"
            raise OhloraError(f"{which}: nothing to score", fix="skip empty messages (check() answers [] for them)")
        if not cleaned:
            return np.zeros((0, self._category_vectors.shape[1]), dtype=np.float32)
        return embed(self.model, cleaned, self.meta.get("query_prefix", ""))

    def scores_from_embeddings(self, embeddings: np.ndarray, scoring: str | None = None,
                               head: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Four scores per embedding (ETHICS_CATEGORIES order) by ``scoring`` (default: the classifier's)."""
        scoring = checked_scoring(scoring or self.scoring)
        if scoring == "head":
            return head_probabilities(embeddings, *required_head(scoring, head or self.head))
        cosines = embeddings @ self._category_vectors.T
        return margin_scores(cosines) if scoring == "margin" else cosines

    def score_texts(self, texts: Iterable[str]) -> np.ndarray:
        """One row of four scores (ETHICS_CATEGORIES order) per text; an empty text is an error."""
        return self.scores_from_embeddings(self.embed_texts(texts))

    def scores(self, text: str) -> dict[str, float]:
        """The four scores of ``text`` (a very long text is truncated by the model)."""
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

    def score_message(self, text: str) -> "MessageScores":
        """``text``'s scores, read once: a chat turn asks twice (before her reply: ``counted_if_declined``; after
        it: ``judge``), and the scores do not depend on the reply. An empty text has no windows."""
        cleaned = clean_text(text)
        if not cleaned:
            return MessageScores(np.zeros((0, len(ETHICS_CATEGORIES)), dtype=np.float32), None)
        windows = self.score_texts(text_windows(cleaned))
        return MessageScores(windows, windows[0] if len(windows) == 1 else self.score_texts([text])[0])

    def counted_if_declined(self, scored: "MessageScores") -> list[str]:
        """The sanction categories that would count for a message (``score_message``) if her reply declined:
        read before her reply, so that the chat can draw one that declines where love or politics would count,
        and one that does not where nothing would (``refusal_wanted``, ``chat.REFUSAL_DRAWS``)."""
        return self.judge(scored, REFUSAL_REPLY)[0]

    def explain(self, text: str, reply: str | None, thresholds: Mapping[str, float] | None = None) -> str:
        """One line saying why ``check`` counts what it counts for this message and reply (for the demo).

        Reads the whole text's scores; ``check`` also reads a very long text window by window.
        """
        return self.verdict(text, reply, thresholds)[1]

    def verdict(self, text: str, reply: str | None,
                thresholds: Mapping[str, float] | None = None) -> tuple[list[str], str]:
        """``(check(...), explain(...))``, scoring a text that fits one window (every chat message) once."""
        return self.judge(self.score_message(text), reply, thresholds)

    def judge(self, scored: "MessageScores", reply: str | None,
              thresholds: Mapping[str, float] | None = None) -> tuple[list[str], str]:
        """``verdict`` of a message already scored (``score_message``): what counts with this reply, and why."""
        thresholds = checked_thresholds(self.thresholds if thresholds is None else thresholds)
        if scored.whole is None:
            return [], "empty message: nothing to check"
        return (counted_categories(scored.windows, reply, thresholds),
                explain_rule(dict(zip(ETHICS_CATEGORIES, map(float, scored.whole))), reply, thresholds))

    def set_thresholds(self, values: Mapping[str, float], source: str, details: dict | None = None,
                       scoring: str | None = None, head: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Use this scoring (and head) with ``values`` from now on; store them next to the model."""
        self.scoring = checked_scoring(scoring or self.scoring)
        self.head = required_head(self.scoring, head if head is not None else self.head)
        self.thresholds, self.thresholds_source = checked_thresholds(values), source
        if self.model_dir is not None:
            if self.scoring == "head":
                save_head(self.model_dir, *self.head)
            save_thresholds(self.model_dir, self.thresholds, source, details, self.scoring)


def checked_scoring(scoring: str) -> str:
    """``scoring`` when it is one of SCORINGS, else a clear error."""
    if scoring not in SCORINGS:
        raise OhloraError(f"unknown scoring {scoring!r}", fix=f"use one of {', '.join(SCORINGS)}")
    return scoring


def required_head(scoring: str, head):
    """``head`` — which the ``head`` scoring cannot do without (a clear error when it is missing)."""
    if scoring == "head" and head is None:
        raise OhloraError("scoring 'head' needs a classification head", fix="pass head=(weight, bias)")
    return head


def save_thresholds(model_dir: Path, thresholds: Mapping[str, float], source: str, details: dict | None = None,
                    scoring: str = "names") -> None:
    record = {"scoring": checked_scoring(scoring), "thresholds": checked_thresholds(thresholds),
              "source": source, "veto_note": f"the {GENERAL} value is the veto", "details": details or {}}
    atomic_write_text(Path(model_dir) / THRESHOLDS_FILE, json.dumps(record, ensure_ascii=False, indent=2))


def read_thresholds(model_dir: Path) -> tuple[dict[str, float], str, str]:
    """``(thresholds, source, scoring)`` stored next to the model; the original's (names) when absent or unreadable."""
    path = Path(model_dir) / THRESHOLDS_FILE
    if not path.is_file():
        return dict(ORIGINAL_THRESHOLDS), "original (no thresholds file)", "names"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        scoring = checked_scoring(record.get("scoring", "names"))
        return checked_thresholds(record["thresholds"]), str(record.get("source", "stored")), scoring
    except (OSError, ValueError, KeyError, TypeError, OhloraError) as problem:
        return dict(ORIGINAL_THRESHOLDS), f"original ({THRESHOLDS_FILE} unreadable: {problem})", "names"


def load_classifier(model_dir: Path | str | None = None) -> EthicsClassifier:
    """The trained ethics classifier in ``model_dir`` (default: artifacts/sbert_ethics) with its scoring and thresholds."""
    model_dir = Path(model_dir) if model_dir else default_model_dir()
    model, meta = load_trained_sbert(model_dir)
    if meta.get("task") != "ethics":
        raise OhloraError(f"{model_dir} holds an S-BERT model for {meta.get('task')!r}, not the ethics classifier",
                          fix=f"point to the ethics model (artifacts/{MODEL_DIR_NAME})")
    thresholds, source, scoring = read_thresholds(model_dir)
    head = read_head(model_dir) if scoring == "head" else None
    return EthicsClassifier(model, meta, model_dir, thresholds, source, scoring, head)
