"""Reuse notebook 02's generated answers when nothing that decides them changed (study side).

Usage::

    frame, reused = cached_frame("output_message", inputs, lambda: generate_rows(...))

Generating 128 guarded answers per task and scoring 1,280 reply candidates takes most of notebook 02 once
the adapters are trained; a second ``make reproduce`` with unchanged inputs should not pay for it again. A
frame is stored in ``artifacts_dir()/evaluation_cache`` as ``<name>.csv`` with ``<name>.json`` holding its
provenance stamp: the caller's inputs (the adapter's own stamp, the rows, the seed, how the models were
loaded) and the source of the code that generates and parses answers. Anything else, or
``OHLORA_FORCE_RETRAIN=1`` (``make reproduce FORCE=1``), computes it again.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Callable

import pandas as pd

from .paths import artifacts_dir
from .provenance import forced, provenance
from .storage import atomic_write_text

CACHE_DIR_NAME = "evaluation_cache"
# the modules whose source decides a generated answer or a likelihood: a change to one computes again
EVALUATION_CODE = ["ohlora_utils.generation", "ohlora_utils.llm_metrics", "ohlora_utils.formats",
                   "ohlora_utils.tasks", "ohlora_utils.timeinfo", "ohlora_utils.vocabulary", "ohlora_utils.models"]


def cache_dir() -> Path:
    return artifacts_dir() / CACHE_DIR_NAME


def cached_frame(name: str, inputs: dict, compute: Callable[[], pd.DataFrame],
                 folder: Path | None = None) -> tuple[pd.DataFrame, bool]:
    """``(frame, reused)``: the stored frame ``name`` when its stamp matches ``inputs`` and the code, else
    ``compute()``, stored atomically (the table first, then its stamp, so a half-written pair never matches)."""
    folder = Path(folder) if folder else cache_dir()
    table, meta = folder / f"{name}.csv", folder / f"{name}.json"
    stamp = provenance(inputs, EVALUATION_CODE)
    if not forced() and table.is_file() and meta.is_file():
        try:
            stored = json.loads(meta.read_text(encoding="utf-8"))
        except ValueError:
            stored = {}
        if stored.get("sha256") == stamp["sha256"]:
            return pd.read_csv(table, keep_default_na=False), True
    frame = compute()
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    atomic_write_text(table, buffer.getvalue())
    atomic_write_text(meta, json.dumps(stamp, ensure_ascii=False, indent=2))
    return frame, False
