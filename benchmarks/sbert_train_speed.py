"""S-BERT training speed: the ethics classifier's steps in fp32 against bf16 autocast, side by side in one run.

Usage: ``.venv/bin/python benchmarks/sbert_train_speed.py [--profile embedded] [--steps 60]``

Each variant trains a fresh copy of the profile's S-BERT base in its own process for ``--steps`` steps on
the same ethics pairs in the same order (batch 16, the default preset's settings otherwise), with a
20-pair validation set so evaluation costs next to nothing. Reported: seconds per step (the whole
training call: model saving and the tiny evaluation included, the same for both), the training loss
over those steps, and the speed-up against fp32. bf16 needs a CPU with AVX512-BF16 or AMX (else both
rows run fp32 and the ratio is about 1).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def run_variant(bf16: bool, profile_name: str, steps: int, queue) -> None:
    from ohlora_utils.data import load_ethics
    from ohlora_utils.ethics_study import PRESETS, ethics_pairs, ethics_splits
    from ohlora_utils.models import load_sbert_base
    from ohlora_utils.profiles import get_profile
    from ohlora_utils.sbert_training import train_cosine_pairs

    profile = get_profile(profile_name)
    train, valid, _ = ethics_splits(load_ethics())
    config = replace(PRESETS["default"], max_steps=steps, bf16=bf16)
    model = load_sbert_base(profile)
    started = time.perf_counter()
    history = train_cosine_pairs(model, ethics_pairs(train), ethics_pairs(valid.head(5)), config, profile,
                                 Path(tempfile.mkdtemp(prefix="sbert-speed-")) / "model", {"task": "ethics"})
    seconds = time.perf_counter() - started
    loss = float(history["train_loss"].dropna().iloc[-1]) if "train_loss" in history else float("nan")
    queue.put({"seconds_per_step": seconds / steps, "train_loss": loss})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="embedded", help="model profile (embedded | tiny | paper)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per variant")
    args = parser.parse_args()
    from ohlora_utils.devices import cpu_has_bf16
    from ohlora_utils.models import provision
    from ohlora_utils.profiles import get_profile

    provision(get_profile(args.profile))
    context = mp.get_context("spawn")
    rows = {}
    for name, bf16 in (("fp32 (baseline)", False), ("bf16 autocast", True)):
        queue = context.Queue()
        process = context.Process(target=run_variant, args=(bf16, args.profile, args.steps, queue))
        process.start()
        rows[name] = queue.get()
        process.join()
    base = rows["fp32 (baseline)"]["seconds_per_step"]
    print(f"\nS-BERT ethics training, {args.steps} steps of batch 16, profile {args.profile}; CPU has bf16: {cpu_has_bf16()}")
    print(f"{'variant':<18}{'s/step':>8}{'train loss':>12}{'speed-up':>10}")
    for name, row in rows.items():
        print(f"{name:<18}{row['seconds_per_step']:>8.3f}{row['train_loss']:>12.4f}{base / row['seconds_per_step']:>9.2f}×")


if __name__ == "__main__":
    main()
