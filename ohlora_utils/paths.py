"""Where the study keeps its inputs and its generated things.

Usage: ``from ohlora_utils.paths import DATA_DIR, cache_dir; cache_dir() / "models"``

Everything generated (model cache, trained artifacts, executed reports) lives in folders that git
ignores. Each can be moved with an environment variable, e.g. to share one model cache between clones.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the repository checkout
DATA_DIR = PROJECT_ROOT / "data"                        # hand-written datasets (tracked)
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"              # the five study notebooks (tracked)
SYNONYMS_FILE = DATA_DIR / "augmentation" / "synonyms.txt"  # augmentation groups; the study vocabulary reads them too


def cache_dir() -> Path:
    """Provisioned base models (filled once, reused). Override with OHLORA_CACHE_DIR."""
    return Path(os.environ.get("OHLORA_CACHE_DIR", PROJECT_ROOT / ".cache" / "ohlora"))


def artifacts_dir() -> Path:
    """Trained adapters, S-BERT models, logs and metrics. Override with OHLORA_ARTIFACTS_DIR."""
    return Path(os.environ.get("OHLORA_ARTIFACTS_DIR", PROJECT_ROOT / "artifacts"))


def reports_dir() -> Path:
    """Executed notebooks and their HTML exports. Override with OHLORA_REPORTS_DIR."""
    return Path(os.environ.get("OHLORA_REPORTS_DIR", PROJECT_ROOT / "reports"))
