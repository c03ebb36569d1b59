"""Memory gate: when the memory task saves something, sampled (the original) or gated (docs/fine_tuning.md).

Usage::

    .venv/bin/python benchmarks/memory_gate.py                       # the adapter make reproduce trained
    .venv/bin/python benchmarks/memory_gate.py --artifacts DIR --out reports/memory_gate
    .venv/bin/python benchmarks/memory_gate.py --keys                # the key drawn vs the likeliest key

Loads the memory adapter (``DIR/adapters/<profile>/memory``, default the artifacts folder) as notebook 02 does
and scores its extraction on every valid row of the fine-tuning data: once with the save-or-not decision
sampled like any other token, and at each gate of ``llm_metrics.GATE_GRID`` (save where the adapter's
probability of "nothing to remember" is below the gate, then sample the memory). Prints the table and writes
``OUT/memory_gate.csv``. About 2 minutes for the 366 valid rows on 2 cores.

``--keys`` compares how the saved memory's key is written instead (``llm_metrics.memory_key_comparison``): drawn
after ``[`` like any other token (the chat), or the likeliest whole key of ``tasks.MEMORY_KEYS`` with only the
value drawn (``choose_keys=True``, tried, not adopted), on the valid rows due a memory with the gate held open;
writes ``OUT/memory_key.csv`` and ``OUT/memory_key_rows.csv``. About 10 minutes for 174 rows.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from ohlora_utils.errors import exit_on_user_error

    parser = argparse.ArgumentParser(prog="benchmarks/memory_gate.py", description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=None, help="artifacts folder (default: OHLORA_ARTIFACTS_DIR or artifacts/)")
    parser.add_argument("--out", type=Path, default=Path("reports/memory_gate"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keys", action="store_true", help="compare the key drawn with the likeliest key instead")
    args = parser.parse_args(argv)
    with exit_on_user_error(parser.prog):
        import pandas as pd

        from ohlora_utils.data import load_fine_tuning
        from ohlora_utils.generation import TaskModels
        from ohlora_utils.llm_metrics import memory_gate_sweep, memory_key_comparison
        from ohlora_utils.models import inference_dtype
        from ohlora_utils.paths import artifacts_dir
        from ohlora_utils.profiles import get_profile
        from ohlora_utils.storage import atomic_write_text

        profile = get_profile()
        folder = (args.artifacts or artifacts_dir()) / "adapters" / profile.name / "memory"
        models = TaskModels.load(profile, tasks=("memory",), adapters={"memory": folder}, dtype=inference_dtype(),
                                 restrict_vocabulary=True)
        frame = load_fine_tuning()
        valid = frame[frame["data_type"] == "valid"]
        args.out.mkdir(parents=True, exist_ok=True)
        if args.keys:
            table, answers = memory_key_comparison(models, valid, seed=args.seed)
            atomic_write_text(args.out / "memory_key_rows.csv", answers.to_csv(index=False))
            name = "memory_key.csv"
        else:
            table, name = memory_gate_sweep(models, valid, seed=args.seed), "memory_gate.csv"
        atomic_write_text(args.out / name, table.to_csv(index=False))
        with pd.option_context("display.width", 160, "display.precision", 3):
            print(table.to_string(index=False))
        print(f"→ {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
