"""Sentence-BERT at chat time: load a trained model and embed texts the way it was trained.

Usage::

    model, meta = load_trained_sbert(model_dir)           # e.g. artifacts/sbert_memory
    vectors = embed(model, texts, meta.get("query_prefix", ""))
    cosines = pair_cosines(model, meta, a_texts, b_texts)

A saved model carries ``ohlora-sbert.json`` with the text prefixes its base expects (e5: ``query: ``), so
whoever loads it embeds texts the way it was trained. Training lives in ``sbert_training`` (study side).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .devices import compute_device
from .errors import OhloraError
from .storage import manifest_problem

SBERT_META = "ohlora-sbert.json"    # prefixes + provenance, next to the saved model


def with_prefix(texts, prefix: str) -> list[str]:
    """``texts`` with the prefix the model was trained with in front (e5: ``query: ``)."""
    return [prefix + text for text in texts]


def embed(model, texts: list[str], prefix: str = "", batch_size: int = 64) -> np.ndarray:
    """L2-normalised embeddings of ``texts`` (with the model's prefix in front)."""
    return model.encode(with_prefix(texts, prefix), batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)


def pair_cosines(model, meta: dict, a_texts: list[str], b_texts: list[str]) -> np.ndarray:
    """Cosine of each (a, b) pair, row by row."""
    a = embed(model, a_texts, meta.get("query_prefix", ""))
    b = embed(model, b_texts, meta.get("passage_prefix", ""))
    return (a * b).sum(axis=1)


def load_trained_sbert(model_dir: Path):
    """``(model, meta)`` for a folder written by ``train_cosine_pairs``; a clear error when absent."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    model_dir = Path(model_dir)
    meta_path = model_dir / SBERT_META
    if not meta_path.is_file():
        raise OhloraError(f"no trained S-BERT model in {model_dir}",
                          fix="run its notebook first (make reproduce), or point to the right folder")
    if problem := manifest_problem(model_dir):
        raise OhloraError(f"the S-BERT model in {model_dir} is damaged: {problem}",
                          fix="delete the folder and train it again (its notebook, or make reproduce)")
    hf_logging.set_verbosity_error()
    try:
        model = SentenceTransformer(str(model_dir), device=compute_device())
    except Exception as cause:  # a damaged file surfaces as any of several library errors
        raise OhloraError(f"the S-BERT model in {model_dir} could not be loaded ({type(cause).__name__}: {cause})",
                          fix="delete the folder and train it again (its notebook, or make reproduce)") from None
    return model, json.loads(meta_path.read_text(encoding="utf-8"))
