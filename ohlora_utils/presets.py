"""Run-size presets shared by the training notebooks: ``quick`` (CI), ``default`` (make reproduce), ``paper``.

Usage: ``preset = get_preset(preset)`` → ``"default"`` (``""`` means ``$OHLORA_PRESET``, else default)

- ``quick``: a few steps per model, so ``make test`` runs every notebook end to end in minutes.
- ``default``: what ``make reproduce`` runs on a 2-core CPU within the README's time budget.
- ``paper``: the original's epochs and batch sizes (meant for a GPU).
Each module keeps its own table of what a preset means for it (e.g. ``memory_study.PRESETS``).
"""
from __future__ import annotations

import os

from .errors import OhloraError

PRESET_ENV = "OHLORA_PRESET"                    # environment variable that picks the preset
PRESET_NAMES = ("quick", "default", "paper")
DEFAULT_PRESET = "default"


def get_preset(name: str | None = None) -> str:
    chosen = (name or os.environ.get(PRESET_ENV) or DEFAULT_PRESET).strip().lower()
    if chosen not in PRESET_NAMES:
        raise OhloraError(f"unknown preset {chosen!r}",
                          fix=f"use one of: {', '.join(PRESET_NAMES)} (preset=… or {PRESET_ENV}=…)")
    return chosen
