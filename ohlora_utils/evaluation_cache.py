"""Reuse notebook 02's generated answers when nothing that decides them changed (study side).

Usage::

    frame, reused = cached_frame("output_message", inputs, lambda: generate_rows(...))

Generating 128 guarded answers per task and scoring 1,280 reply candidates takes most of notebook 02 once
the adapters are trained; a second ``make reproduce`` with unchanged inputs should not pay for it again. A
frame is stored in ``artifacts_dir()/evaluation_cache`` as ``<name>.frame.json`` (its columns as JSON lists,
so None, booleans and numbers come back as they were) with ``<name>.meta.json`` holding its provenance stamp:
the caller's inputs (the adapter's own stamp, the rows, the seed, how the models were loaded) and the source
of the code that generates and parses answers. Anything else, or ``OHLORA_FORCE_RETRAIN=1``
(``make reproduce FORCE=1``), computes it again, and one line says why.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pandas as pd

from .paths import artifacts_dir
from .provenance import forced, provenance, stored_provenance, why_not_reused
from .storage import atomic_write_text

CACHE_DIR_NAME = "evaluation_cache"
# the modules whose source decides a generated answer or a likelihood: a change to one computes again
EVALUATION_CODE = ["ohlora_utils.generation", "ohlora_utils.decoding", "ohlora_utils.llm_metrics",
                   "ohlora_utils.formats", "ohlora_utils.tasks", "ohlora_utils.timeinfo", "ohlora_utils.vocabulary",
                   "ohlora_utils.models"]


def cache_dir() -> Path:
    return artifacts_dir() / CACHE_DIR_NAME


def cached_frame(name: str, inputs: dict, compute: Callable[[], pd.DataFrame],
                 folder: Path | None = None) -> tuple[pd.DataFrame, bool]:
    """``(frame, reused)``: the stored frame ``name`` when its stamp matches ``inputs`` and the code, else
    ``compute()``, stored atomically (the frame first, then its stamp, so a half-written pair never matches)."""
    folder = Path(folder) if folder else cache_dir()
    table, meta_name = folder / f"{name}.frame.json", f"{name}.meta.json"
    stamp = provenance(inputs, EVALUATION_CODE)
    stored = stored_provenance(folder, meta_name)
    if not forced() and table.is_file() and stored and stored.get("sha256") == stamp["sha256"]:
        try:
            return pd.DataFrame(json.loads(table.read_text(encoding="utf-8"))["columns"]), True
        except (ValueError, KeyError, TypeError):
            print(f"[evaluation] {table.name} is unreadable: computing it again")
    else:
        print(f"[evaluation] computing {name} ({why_not_reused(folder, meta_name, stamp)})")
    frame = compute()
    folder.mkdir(parents=True, exist_ok=True)
    columns = {str(name): frame[name].astype(object).where(frame[name].notna(), None).tolist() for name in frame}
    atomic_write_text(table, json.dumps({"columns": columns}, ensure_ascii=False, default=_plain))
    atomic_write_text(folder / meta_name, json.dumps({"provenance": stamp}, ensure_ascii=False, indent=2))
    return frame, False


def _plain(value):
    """numpy scalars as the Python numbers JSON knows."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
