"""Memory retrieval in a chat turn: the trained S-BERT scores each stored ``[key: value]`` item against the message.

Usage::

    retriever = load_retriever()        # the model notebook 03 saved to artifacts_dir()/sbert_memory
    item, score = retriever.best("로라야 점심 뭐 먹지?", ["[좋아하는 음식: 떡볶이]", "[내일 일정: 치과]"])

docs/memory.md: the best item is used only when its cosine with the message reaches the threshold chosen
at training (``threshold.json`` next to the model; 0.95 in the original). Training, the pairs and their
labels, evaluation and the threshold's choice live in ``memory_study``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import OhloraError
from .formats import parse_memory_item
from .paths import artifacts_dir
from .sbert import embed, load_trained_sbert

MODEL_DIR_NAME = "sbert_memory"      # under artifacts_dir(): the trained retriever
THRESHOLD_FILE = "threshold.json"    # the chosen threshold and how it was chosen, next to the model
ORIGINAL_THRESHOLD = 0.95            # the original product's threshold on its own model


def default_model_dir() -> Path:
    return artifacts_dir() / MODEL_DIR_NAME


def similarity_matrix(model, meta: dict, messages: list[str], memories: list[str]) -> np.ndarray:
    """Cosine of every message (rows) with every memory item (columns)."""
    queries = embed(model, list(messages), meta.get("query_prefix", ""))
    passages = embed(model, list(memories), meta.get("passage_prefix", ""))
    return queries @ passages.T



class MemoryRetriever:
    """Scores ``[key: value]`` items against a user message with a trained S-BERT model."""

    def __init__(self, model, meta: dict, threshold: float | None = None):
        self.model, self.meta, self.threshold = model, meta, threshold

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

        ``threshold`` defaults to the one chosen at training (threshold.json). No items: ``(None, 0.0)``.
        """
        threshold = self.threshold if threshold is None else threshold
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
    threshold = None
    if threshold_path.is_file():
        try:
            threshold = float(json.loads(threshold_path.read_text(encoding="utf-8"))["threshold"])
        except (ValueError, KeyError, TypeError):
            raise OhloraError(f"{threshold_path} is unreadable",
                              fix="delete it and run notebook 03 again to choose the threshold") from None
    return MemoryRetriever(model, meta, threshold)
