"""Where each task's trained LoRA adapter lives and what it says about itself: read at chat time and by training.

Usage: ``folder = adapter_dir(get_profile(), "output_message")``; ``meta = read_adapter_meta(folder)``
(``ohlora-adapter.json``: base model, task, config, data fingerprint, steps; a clear error when it is absent,
damaged or unreadable). ``finetune`` writes adapters; ``generation`` loads them.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import OhloraError
from .paths import artifacts_dir
from .profiles import Profile
from .storage import manifest_problem, read_manifest

ADAPTER_META = "ohlora-adapter.json"   # provenance next to each adapter


def adapter_dir(profile: Profile, task: str) -> Path:
    return artifacts_dir() / "adapters" / profile.name / task



def read_adapter_meta(folder: Path) -> dict:
    """The provenance of a trained adapter; a clear error when it is absent, damaged or unreadable."""
    path = Path(folder) / ADAPTER_META
    if not path.is_file():
        raise OhloraError(f"no trained adapter in {folder}",
                          fix="train it first: run notebook 02 (make reproduce), or pass the right folder")
    retrain = "delete the folder and train it again (notebook 02, or make reproduce)"
    if read_manifest(folder) is not None and (problem := manifest_problem(folder)):
        raise OhloraError(f"the adapter in {folder} is damaged: {problem}", fix=retrain)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as cause:
        raise OhloraError(f"the adapter in {folder} has an unreadable {ADAPTER_META} ({cause})", fix=retrain) from None
