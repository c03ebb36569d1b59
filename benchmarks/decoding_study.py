"""Decoding study: the same reply adapter, different ways of drawing tokens, graded blind (docs/fine_tuning.md).

Usage::

    .venv/bin/python benchmarks/decoding_study.py generate --artifacts artifacts --n 60 --out reports/decoding_study
    .venv/bin/python benchmarks/decoding_study.py draw --out reports/decoding_study --set data/eval/grading/NAME
    .venv/bin/python benchmarks/blind_grading.py grade --set data/eval/grading/NAME --grader alice   # graders
    .venv/bin/python benchmarks/decoding_study.py summary --set data/eval/grading/NAME

``generate`` answers a seeded sample of ``data/eval/everyday_messages.csv`` (a first turn each, on the
yardstick's Saturday-afternoon clock) once per setting of ``ohlora_utils.decoding_study.SETTINGS``, with the
chat's reply model (merged int8 copy, study vocabulary), and writes ``replies.csv`` and the seconds each
setting took. ``draw`` puts all settings' replies on one blind sheet; ``summary`` prints the table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from ohlora_utils.errors import exit_on_user_error

    parser = argparse.ArgumentParser(prog="benchmarks/decoding_study.py", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    generate = verbs.add_parser("generate", help="every setting's replies to a sample of everyday messages")
    generate.add_argument("--artifacts", type=Path, default=None, help="trained adapters (default: artifacts_dir())")
    generate.add_argument("--n", type=int, default=60, help="everyday messages, drawn at random")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--out", type=Path, required=True)
    draw = verbs.add_parser("draw", help="a blind grading set of every setting's replies")
    draw.add_argument("--out", type=Path, required=True, help="the folder generate wrote")
    draw.add_argument("--set", type=Path, required=True, dest="folder", help="new grading set folder")
    summary = verbs.add_parser("summary", help="the table: blind grade and automatic metrics per setting")
    summary.add_argument("--set", type=Path, required=True, dest="folder")
    args = parser.parse_args(argv)
    with exit_on_user_error(parser.prog):
        if args.verb == "generate":
            generate_replies(args)
        elif args.verb == "draw":
            import pandas as pd

            from ohlora_utils import grading

            replies = pd.read_csv(args.out / "replies.csv", keep_default_na=False)
            sheet = grading.draw_every(replies, "setting", args.folder)
            print(f"{len(sheet)} items in {args.folder / 'sheet.csv'} (graders never open key.csv)")
        else:
            from ohlora_utils import decoding_study, grading
            from ohlora_utils.yardstick import markdown_table

            table = decoding_study.decoding_table(grading.set_samples(args.folder),
                                                  grading.grade_tables(args.folder)["grades by recipe"])
            print(markdown_table(table.round(3)))
    return 0


def generate_replies(args) -> None:
    import pandas as pd

    from ohlora_utils import decoding_study
    from ohlora_utils.chat import load_chat_models
    from ohlora_utils.eval_data import load_everyday
    from ohlora_utils.models import load_sbert_base
    from ohlora_utils.profiles import get_profile
    from ohlora_utils.yardstick import START

    profile = get_profile()
    models = load_chat_models(profile, args.artifacts, merged=("output_message",))
    everyday = load_everyday().sample(args.n, random_state=args.seed)
    relevance = load_sbert_base(profile)
    args.out.mkdir(parents=True, exist_ok=True)
    frames, seconds = [], {}
    for name, setting in decoding_study.SETTINGS.items():
        started = time.perf_counter()
        replies = decoding_study.decoding_replies(models.llms, everyday["text"].tolist(), setting, START, args.seed,
                                                  relevance, profile.query_prefix)
        seconds[name] = round((time.perf_counter() - started) / len(everyday), 3)
        frames.append(replies.assign(setting=name, id=everyday["id"].to_numpy(), kind=everyday["kind"].to_numpy()))
        print(f"{name}: {seconds[name]} s per message", flush=True)
    pd.concat(frames).to_csv(args.out / "replies.csv", index=False)
    (args.out / "run.json").write_text(json.dumps({"n": args.n, "seed": args.seed, "seconds per message": seconds},
                                                  ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
