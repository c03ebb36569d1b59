"""Turn latency: the chat engine's turn against the four tasks one after another, side by side in one run.

Usage: ``.venv/bin/python benchmarks/turn_latency.py [--profile embedded] [--rounds 1]``
(needs the profile's trained artifacts: run ``make reproduce`` first)

A fixed scripted conversation is played ``--rounds`` times by each variant, with a fresh user each time
(so no sanction or memory carries over between variants) and the same seeds. The variants add one lever
at a time, so each one's share of the gain shows:

1. ``one after another``: the four tasks in four guarded generate calls, fp32, full output layer (baseline);
2. ``batched``: reply + memory in one generate over mixed adapters, then summary + expression in another;
3. ``+ study vocabulary``: the output layer restricted to the study's vocabulary (``vocabulary.py``);
4. ``+ bf16 weights``: the base weights in bfloat16 as well;
5. ``+ merged reply``: the reply decoded alone on its own merged copy of the base (``MergedTaskModel``), the
   memory extraction moved after it, beside the summary and the expression;
6. ``+ int8 reply``: that merged copy's backbone weights as weight-only int8 (``Int8Linear``);
7. ``+ every task merged``: memory, summary and expression get int8 merged copies too, and the three rows
   after the reply run one after another on them instead of one batch over the shared base (the chat's
   default on a CPU).

Decode speed: for variants 4 to 6, each scripted message is also answered once more as a single reply
row (the same seeds), and the tokens sampled per second of generation are reported: the shared base with
PEFT adapters through ``generate`` against the merged copy's own loop.

Reported per variant: the whole turn (p50 / p95 / mean, and the p50 speed-up over the baseline) and the
time until her reply can be shown (p50 / p95). Before reply-first, the chat printed the reply when the whole
turn was done, so the whole turn was also the time to reply; now the terminal and the panel show it as soon
as it has passed the ethics check (``turn(on_reply=…)``), and the summary and expression run after it.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
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


def decode_speed(llms, rounds: int) -> tuple[int, float]:
    """Tokens sampled and seconds spent answering each scripted message as one reply row (same seeds)."""
    from ohlora_utils.tasks import TASKS

    tokens, seconds = 0, 0.0
    for round_ in range(rounds):
        for index, text in enumerate(SCRIPT):
            prompt = TASKS["output_message"].prompt({"input_data": text})
            started = time.perf_counter()
            generation = llms.generate("output_message", [prompt], TASKS["output_message"].temperature,
                                       seed=1000 * round_ + index)[0]
            seconds += time.perf_counter() - started
            tokens += generation.tokens
    return tokens, seconds


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
    from ohlora_utils.tasks import TASK_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="embedded")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    variants = [  # name, batched, restrict_vocabulary, dtype, merged copies ("", "bf16", "int8" or "all int8")
        ("one after another", False, False, torch.float32, ""),
        ("batched", True, False, torch.float32, ""),
        ("+ study vocabulary", True, True, torch.float32, ""),
        ("+ bf16 weights", True, True, torch.bfloat16, ""),
        ("+ merged reply", True, True, torch.bfloat16, "bf16"),
        ("+ int8 reply", True, True, torch.bfloat16, "int8"),
        ("+ every task merged", True, True, torch.bfloat16, "all int8"),
    ]
    retriever, classifier = load_retriever(artifacts_dir() / MEMORY_DIR), load_classifier(artifacts_dir() / ETHICS_DIR)
    start = datetime(2026, 11, 21, 14, 0, tzinfo=timezone(timedelta(hours=9)))
    results, replies, decode = {}, {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for variant, batched, restrict_vocabulary, dtype, merged in variants:
            llms = TaskModels.load(profile, dtype=dtype, restrict_vocabulary=restrict_vocabulary,
                                   merged=TASK_NAMES if merged == "all int8" else ("output_message",) if merged else (),
                                   merged_int8=merged.endswith("int8"))
            latencies, to_reply = [], []
            for round_ in range(args.rounds):
                clock = lambda: start  # noqa: E731 — a fixed clock: every variant sees the same time
                user = f"{variant}-{round_}"
                engine = ChatEngine(llms, retriever, classifier, MemoryStore(Path(scratch) / "m.sqlite", user=user, clock=clock),
                                    SanctionLog(Path(scratch) / "s.sqlite", clock=clock), user, clock, seed=round_,
                                    batched=batched)
                engine.turn(SCRIPT[0])  # warm-up turn, not timed
                for text in SCRIPT:
                    started = time.perf_counter()
                    result = engine.turn(text)
                    latencies.append(time.perf_counter() - started)
                    to_reply.append(result.seconds_to_reply)
                engine.close()
            results[variant] = latencies
            replies[variant] = to_reply
            if dtype == torch.bfloat16 and merged != "all int8":   # the 7th decodes the reply as the 6th does
                decode[variant] = decode_speed(llms, args.rounds)
            del llms
            print(f"{variant}: {len(latencies)} turns, p50 {percentile(latencies, .5):.2f} s", flush=True)
    print(f"\nprofile {profile.name}, {len(SCRIPT)} scripted turns × {args.rounds} round(s), "
          f"{torch.get_num_threads()} CPU threads")
    baseline = percentile(results[variants[0][0]], .5)
    print(f"{'':20s} {'whole turn':^37s} {'reply shown':^16s}")
    print(f"{'variant':20s} {'p50 s':>7s} {'p95 s':>7s} {'mean s':>7s} {'p50 speed-up':>13s} {'p50 s':>7s} {'p95 s':>7s}")
    for variant, latencies in results.items():
        print(f"{variant:20s} {percentile(latencies, .5):7.2f} {percentile(latencies, .95):7.2f} "
              f"{statistics.mean(latencies):7.2f} {baseline / percentile(latencies, .5):12.2f}× "
              f"{percentile(replies[variant], .5):7.2f} {percentile(replies[variant], .95):7.2f}")
    print(f"\ndecode speed, one reply row per scripted message × {args.rounds} round(s):")
    for variant, (tokens, seconds) in decode.items():
        path = {"+ merged reply": "merged copy, own loop", "+ int8 reply": "int8 merged copy, own loop"}.get(
            variant, "shared base + adapters, generate")
        print(f"  {variant:20s} {tokens / seconds:6.1f} tokens/s ({tokens} tokens in {seconds:.1f} s; {path})")
    chat = variants[-1][0]
    print(f"\nreply first ({chat}, the chat's default): her reply after {percentile(replies[chat], .5):.2f} s (p50) "
          f"instead of after the whole turn's {percentile(results[chat], .5):.2f} s: "
          f"{percentile(results[chat], .5) / percentile(replies[chat], .5):.2f}× sooner")


if __name__ == "__main__":
    main()
