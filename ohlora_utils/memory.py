"""Memory retrieval in a chat turn: the trained S-BERT scores each stored ``[key: value]`` item against the message.

Usage::

    retriever = load_retriever()        # the model notebook 03 saved to artifacts_dir()/sbert_memory
    item, score = retriever.best("로라야 점심 뭐 먹지?", ["[좋아하는 음식: 떡볶이]", "[내일 일정: 치과]"])

docs/memory.md: the best item is used only when its cosine with the message reaches the threshold chosen
at training (``threshold.json`` next to the model; 0.95 in the original). A message that asks her to recall
something ("기억나?", "뭐라고 했지?": ``asks_to_recall``) has a threshold of its own, chosen on such messages
alone by F1 rather than F0.5, because the user has just said a memory is wanted and a missed one fails the
answer as a wrong one does. Training, the pairs and their labels,
evaluation and the thresholds' choice live in ``memory_study``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .errors import OhloraError
from .formats import parse_memory_item
from .paths import artifacts_dir
from .sbert import embed, load_trained_sbert

MODEL_DIR_NAME = "sbert_memory"      # under artifacts_dir(): the trained retriever
THRESHOLD_FILE = "threshold.json"    # the chosen threshold and how it was chosen, next to the model
ORIGINAL_THRESHOLD = 0.95            # the original product's threshold on its own model
ASKED_THRESHOLD_KEY = "asked_threshold"   # in threshold.json: the threshold of messages that ask to recall
# Words with which a user asks her to recall what they told her: 기억나? (ㄱㅇㄴ), 뭐라고 했지 / 했더라 / 했었나 /
# 했잖아 / 그랬지 / 한댔지, 말했던 / 말씀드렸죠, 얘기한 거, 뭐였지 / 뭐더라, 알지?, 뭐게 / 있게 없게, 맞혀 봐,
# and their typed-fast spellings (햇지, 머엿지, 잇엇지). "했지만" goes on with a story, "맛있더라" tells one,
# "용돈 드렸어" and "알지만" tell too.
_PAST = "했햇였엿댔엇"   # the past-tense syllables these questions end on, typos included
ASKS_TO_RECALL = re.compile(rf"기억|ㄱㅇ[ㄴㅎ]|[{_PAST}]지(?!만)|[{_PAST}]죠|[{_PAST}]더라|[{_PAST}][었엇]|했잖|그랬[지잖]"
                            r"|말했|드렸(?:었|엇)?[죠지잖나]|얘기했|얘기한\s*거|알지(?![만도])|알아\s*\?|뭐였|(?:뭐|어디|누구|언제|몇)\s*(?:더라|였|이었)"
                            r"|(?:뭐|누구|어디|이|했)게(?=\s*[?~ㅋㅎ!.]|\s*$)|게\s*(?:아니게|없게)|뭘까|맞춰|맞혀|더라\s*\?")


def asks_to_recall(message: str) -> bool:
    """Whether ``message`` asks Oh-LoRA to recall something the user told her ("내 고향 어디라고 했지?")."""
    return bool(ASKS_TO_RECALL.search(message))


def default_model_dir() -> Path:
    return artifacts_dir() / MODEL_DIR_NAME


def similarity_matrix(model, meta: dict, messages: list[str], memories: list[str]) -> np.ndarray:
    """Cosine of every message (rows) with every memory item (columns)."""
    queries = embed(model, list(messages), meta.get("query_prefix", ""))
    passages = embed(model, list(memories), meta.get("passage_prefix", ""))
    return queries @ passages.T



class MemoryRetriever:
    """Scores ``[key: value]`` items against a user message with a trained S-BERT model."""

    def __init__(self, model, meta: dict, threshold: float | None = None, asked_threshold: float | None = None):
        self.model, self.meta, self.threshold, self.asked_threshold = model, meta, threshold, asked_threshold

    def threshold_for(self, query: str) -> float | None:
        """The threshold a message meets: ``asked_threshold`` when it asks to recall (and one was chosen),
        else ``threshold``."""
        if self.asked_threshold is not None and asks_to_recall(query):
            return self.asked_threshold
        return self.threshold

    def scores(self, query: str, items: list[str]) -> list[float]:
        """Cosine of ``query`` with each item; ``[]`` for no items. Empty query or malformed item: OhloraError."""
        if not isinstance(query, str) or not query.strip():
            raise OhloraError("the query is empty", fix="pass the user's message (non-blank text)")
        bad = [f"#{n} {item!r}" for n, item in enumerate(items) if not isinstance(item, str)
               or parse_memory_item(item) is None]
        if bad:
            raise OhloraError(f"not a [key: value] memory item: {', '.join(bad[:5])}",
                              fix="store items as exactly one [key: value] each")
        if not items:
            return []
        return [float(s) for s in similarity_matrix(self.model, self.meta, [query.strip()],
                                                    [item.strip() for item in items])[0]]

    def best(self, query: str, items: list[str], threshold: float | None = None) -> tuple[str | None, float]:
        """``(item, score)`` of the best item when its score ≥ threshold, else ``(None, score)``.

        ``threshold`` defaults to the one chosen at training for this kind of message (``threshold_for``,
        threshold.json). No items: ``(None, 0.0)``.
        """
        threshold = self.threshold_for(query) if threshold is None else threshold
        if threshold is None:
            raise OhloraError("this memory model has no chosen threshold",
                              fix="pass threshold=…, or run notebook 03 to choose and save one")
        scores = self.scores(query, items)
        if not scores:
            return None, 0.0
        best = int(np.argmax(scores))
        return (items[best] if scores[best] >= threshold else None), scores[best]


def load_retriever(model_dir: Path | str | None = None) -> MemoryRetriever:
    """The trained memory retriever in ``model_dir`` (default ``artifacts_dir()/sbert_memory``)."""
    model_dir = Path(model_dir or default_model_dir())
    model, meta = load_trained_sbert(model_dir)
    threshold_path = model_dir / THRESHOLD_FILE
    threshold = asked_threshold = None
    if threshold_path.is_file():
        try:
            saved = json.loads(threshold_path.read_text(encoding="utf-8"))
            threshold = float(saved["threshold"])
            if saved.get(ASKED_THRESHOLD_KEY) is not None:   # absent in files written before it existed
                asked_threshold = float(saved[ASKED_THRESHOLD_KEY])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise OhloraError(f"{threshold_path} is unreadable",
                              fix="delete it and run notebook 03 again to choose the threshold") from None
    return MemoryRetriever(model, meta, threshold, asked_threshold)
