"""Reuse a trained artifact when nothing that made it has changed; retrain otherwise.

Usage::

    stamp = provenance(inputs={"config": asdict(config), "rows_sha256": ...}, code=CODE_MODULES)
    if reusable(folder, "ohlora-adapter.json", stamp): ...      # skip training, read what is there
    else: train, then store ``{"provenance": stamp, ...}`` in that JSON

A stamp is the SHA-256 of everything a training run depends on — the data it sees (hashed after every
transformation), its config and seed, the base model, the library versions, and the source of the modules
that train. A folder is reused only when its JSON carries the same stamp and its manifest still matches its
files; ``OHLORA_FORCE_RETRAIN=1`` (``make reproduce FORCE=1``) retrains everything regardless.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

from .storage import manifest_problem

FORCE_ENV = "OHLORA_FORCE_RETRAIN"                 # "1": never reuse, retrain every artifact
LIBRARIES = ("torch", "transformers", "peft", "trl", "sentence-transformers")  # versions that change a result


def forced() -> bool:
    return os.environ.get(FORCE_ENV, "").strip().lower() in {"1", "true", "yes"}


def code_version(module_names: list[str]) -> str:
    """SHA-256 over the source files of the named modules (``"ohlora_utils.finetune"``, …)."""
    digest = hashlib.sha256()
    for name in sorted(module_names):
        module = sys.modules.get(name) or __import__(name, fromlist=["_"])
        digest.update(name.encode() + b"\0" + Path(module.__file__).read_bytes() + b"\0")
    return digest.hexdigest()


def content_sha256(value) -> str:
    """A stable hash of JSON-able data (rows, pairs): key order and formatting do not matter."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def library_versions() -> dict[str, str]:
    """The installed versions of the libraries whose version can change a trained result."""
    return {name: version(name) for name in LIBRARIES}


def provenance(inputs: dict, code: list[str]) -> dict:
    """The stamp of one training run: its inputs, the code version and library versions, and one hash of all."""
    parts = {"inputs": inputs, "code_sha256": code_version(code), "versions": library_versions()}
    return {"sha256": content_sha256(parts), **parts}


def stored_provenance(folder: Path, meta_name: str) -> dict | None:
    try:
        return json.loads((Path(folder) / meta_name).read_text(encoding="utf-8")).get("provenance")
    except (OSError, ValueError, AttributeError):
        return None


def reusable(folder: Path, meta_name: str, stamp: dict) -> bool:
    """True when ``folder`` holds an intact artifact made by a run with this very stamp (and no force)."""
    folder = Path(folder)
    if forced() or not (folder / meta_name).is_file():
        return False
    stored = stored_provenance(folder, meta_name)
    return bool(stored) and stored.get("sha256") == stamp["sha256"] and manifest_problem(folder) is None


def why_not_reused(folder: Path, meta_name: str, stamp: dict) -> str:
    """One line for the log: why this run trains instead of reusing ``folder``."""
    if forced():
        return f"{FORCE_ENV}=1"
    stored = stored_provenance(folder, meta_name)
    if not (Path(folder) / meta_name).is_file():
        return "nothing trained yet"
    if not stored:
        return "the artifact there has no provenance stamp"
    changed = [key for key in ("inputs", "code_sha256", "versions") if stored.get(key) != stamp.get(key)]
    if changed:
        if "inputs" in changed and isinstance(stored.get("inputs"), dict):
            changed = [f"inputs.{k}" for k in sorted(set(stored["inputs"]) | set(stamp["inputs"]))
                       if stored["inputs"].get(k) != stamp["inputs"].get(k)] + changed[1:]
        return "changed since: " + ", ".join(changed)
    return "its files no longer match their manifest"
