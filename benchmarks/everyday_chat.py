"""The everyday-conversation yardstick: the trained chat over what users really type (data/eval/).

Usage::

    .venv/bin/python benchmarks/everyday_chat.py                       # embedded profile, every part, resumable
    .venv/bin/python benchmarks/everyday_chat.py --everyday-limit 400  # end to end on a stratified sample
    .venv/bin/python benchmarks/everyday_chat.py --everyday-limit 210 --sanction-limit 60 --conversations-limit 50
    .venv/bin/python benchmarks/everyday_chat.py --profile tiny --quick --artifacts DIR   # a few items (tests)

Needs the profile's trained artifacts (``make reproduce``; ``OHLORA_ARTIFACTS_DIR`` or ``--artifacts``).
Writes ``reports/everyday_chat/`` (``--out``): ``records/*.jsonl`` (every turn, appended as it runs, so a
killed run resumes), ``classifier_*.csv`` (the classifier alone on every message), one CSV per table,
``summary.md`` and ``overview.png``. ``benchmarks/blind_grading.py`` draws replies to grade from it.
What each figure means: ``ohlora_utils/yardstick.py``. The yardstick is never used to fit anything.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

PARTS = ("everyday", "sanction", "conversations")


def main(argv: list[str] | None = None) -> int:
    from ohlora_utils.chat import load_chat_models
    from ohlora_utils.errors import exit_on_user_error
    from ohlora_utils.eval_data import load_conversations, load_everyday, load_sanction
    from ohlora_utils.notebook import seed_everything
    from ohlora_utils.paths import artifacts_dir, reports_dir
    from ohlora_utils.profiles import get_profile
    from ohlora_utils.yardstick import RunConfig, YardstickRun, write_report

    parser = argparse.ArgumentParser(prog="benchmarks/everyday_chat.py", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="embedded (default) | paper | tiny")
    parser.add_argument("--artifacts", type=Path, default=None, help="trained models (default: artifacts/)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: reports/everyday_chat)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every turn")
    parser.add_argument("--quick", action="store_true", help="one item per kind / category, two conversations (tests)")
    parser.add_argument("--everyday-limit", type=int, default=0,
                        help="run the chat on a stratified sample of this many everyday messages (0: all); "
                             "the classifier alone always reads all of them")
    parser.add_argument("--everyday-flagged", action="store_true",
                        help="also play every everyday message the classifier alone would count: only those can "
                             "count end to end, so the end-to-end figure over all messages is exact")
    parser.add_argument("--sanction-limit", type=int, default=0,
                        help="run the chat on a sample of this many sanction messages, stratified by category (0: all)")
    parser.add_argument("--conversations-limit", type=int, default=0,
                        help="play this many conversations, drawn at random with the seed (0: all)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to run, in this order")
    parser.add_argument("--fresh", action="store_true", help="delete the report folder first (no resume)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    with exit_on_user_error(parser.prog):
        profile = get_profile(args.profile)
        artifacts = args.artifacts or artifacts_dir()
        out = args.out or reports_dir() / "everyday_chat"
        if args.fresh and out.exists():
            shutil.rmtree(out)
        seed_everything(args.seed)
        config = RunConfig(profile=profile.name, artifacts=str(Path(artifacts).resolve()), seed=args.seed,
                           quick=args.quick, everyday_limit=args.everyday_limit, sanction_limit=args.sanction_limit,
                           conversations_limit=args.conversations_limit,
                           everyday_flagged=args.everyday_flagged)
        started = time.perf_counter()
        print(f"Loading the {profile.name} chat models from {artifacts} …", flush=True)
        run = YardstickRun(load_chat_models(profile, artifacts), out, config, progress=not args.no_progress)
        everyday, sanction = load_everyday(), load_sanction()
        run.classifier_scores("everyday", everyday)
        run.classifier_scores("sanction", sanction)
        plays = {"everyday": lambda: run.everyday(everyday), "sanction": lambda: run.sanction(sanction),
                 "conversations": lambda: run.conversations(load_conversations())}
        for part in dict.fromkeys(args.parts):   # in the order given
            plays[part]()
        summary = write_report(out)
        print(summary.read_text(encoding="utf-8"))
        print(f"\nreport: {summary} and {out / 'overview.png'} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
