"""Turn latency: the chat engine's batched turn against the four tasks one after another, same models.

Usage: ``.venv/bin/python benchmarks/turn_latency.py [--profile embedded] [--rounds 1] [--dtype float32]``
(needs the profile's trained artifacts: run ``make reproduce`` first)

A fixed scripted conversation is played ``--rounds`` times by each variant, in one run, with a fresh
user each time (so no sanction or memory carries over between variants) and the same seeds. Reported:
p50 / p95 / mean seconds per turn and the speed-up of p50. The ``--dtype bfloat16`` option loads the
base model's weights in bf16 for inference (fewer bytes read per token; the CPU needs bf16 support).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

SCRIPT = [  # a fixed conversation: time words, a fact, a follow-up, small talk
    "로라야 오늘 날씨 진짜 좋다",
    "나 떡볶이 진짜 좋아해",
    "점심 뭐 먹을지 고민이야",
    "요즘 회사 일이 많아서 좀 지쳤어",
    "내일은 좀 쉬고 싶다",
    "너는 주말에 뭐 해?",
    "좋아하는 노래 추천해 줘",
    "고마워 로라야 잘 자",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    import torch

    from ohlora_utils.chat import ChatEngine
    from ohlora_utils.ethics import MODEL_DIR_NAME as ETHICS_DIR, load_classifier
    from ohlora_utils.generation import TaskModels
    from ohlora_utils.memory import MODEL_DIR_NAME as MEMORY_DIR, load_retriever
    from ohlora_utils.memory_store import MemoryStore
    from ohlora_utils.paths import artifacts_dir
    from ohlora_utils.profiles import get_profile
    from ohlora_utils.sanctions import SanctionLog

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="embedded")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    profile = get_profile(args.profile)
    llms = TaskModels.load(profile, dtype=getattr(torch, args.dtype))
    retriever, classifier = load_retriever(artifacts_dir() / MEMORY_DIR), load_classifier(artifacts_dir() / ETHICS_DIR)
    start = datetime(2026, 11, 21, 14, 0, tzinfo=timezone(timedelta(hours=9)))
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for variant, batched in (("one after another", False), ("batched", True)):
            latencies = []
            for round_ in range(args.rounds):
                clock = lambda: start  # noqa: E731 — a fixed clock: every variant sees the same time
                user = f"{variant}-{round_}"
                engine = ChatEngine(llms, retriever, classifier, MemoryStore(Path(scratch) / "m.sqlite", user=user, clock=clock),
                                    SanctionLog(Path(scratch) / "s.sqlite", clock=clock), user, clock, seed=round_,
                                    batched=batched)
                engine.turn(SCRIPT[0])  # warm-up turn, not timed
                for text in SCRIPT:
                    result = engine.turn(text)
                    latencies.append(sum(result.seconds.values()))
                engine.close()
            results[variant] = latencies
            print(f"{variant}: {len(latencies)} turns", flush=True)
    print(f"\nprofile {profile.name}, weights {args.dtype}, {len(SCRIPT)} scripted turns × {args.rounds} round(s)")
    print(f"{'variant':20s} {'p50 s':>7s} {'p95 s':>7s} {'mean s':>7s}")
    for variant, latencies in results.items():
        print(f"{variant:20s} {percentile(latencies, .5):7.2f} {percentile(latencies, .95):7.2f} "
              f"{statistics.mean(latencies):7.2f}")
    ratio = percentile(results["one after another"], .5) / percentile(results["batched"], .5)
    print(f"speed-up of p50: {ratio:.2f}×")


if __name__ == "__main__":
    main()
