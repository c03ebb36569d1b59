"""Recipe study: the reply adapter trained several ways, graded blind on everyday chat (docs/fine_tuning.md).

Usage::

    .venv/bin/python benchmarks/recipe_study.py train --out reports/recipe_study            # ~1 h 10 min on 2 cores
    .venv/bin/python benchmarks/recipe_study.py generate --out reports/recipe_study --n 70
    .venv/bin/python benchmarks/recipe_study.py draw --out reports/recipe_study --set data/eval/grading/NAME
    .venv/bin/python benchmarks/blind_grading.py grade --set data/eval/grading/NAME --grader alice   # graders
    .venv/bin/python benchmarks/recipe_study.py summary --set data/eval/grading/NAME

``train`` trains each recipe of ``ohlora_utils.recipe_study.RECIPES`` (``--recipe`` picks some) into
``OUT/<folder>/output_message`` and keeps going where it stopped (a trained adapter is reused). ``generate``
loads each adapter as the chat does (merged int8 copy, study vocabulary, the chat's decoding), answers a
seeded sample of ``data/eval/everyday_messages.csv`` (a first turn each, on the yardstick's clock), with
``--selection`` ranks notebook 02's response selection too, and writes ``OUT/<folder>/replies.csv`` and ``run.json`` (a recipe with
replies is skipped). ``draw`` puts every recipe's replies on one blind sheet and writes their runs to the
set's ``runs.csv``; ``summary`` prints the table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPLIES, RUN = "replies.csv", "run.json"   # what generate writes beside each recipe's adapter

def main(argv: list[str] | None = None) -> int:
    from ohlora_utils.errors import exit_on_user_error

    parser = argparse.ArgumentParser(prog="benchmarks/recipe_study.py", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    train = verbs.add_parser("train", help="train every recipe's reply adapter")
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--recipe", action="append", default=None, help="a recipe name (repeatable; default all)")
    generate = verbs.add_parser("generate", help="every recipe's replies to a sample of everyday messages")
    generate.add_argument("--out", type=Path, required=True, help="the folder train wrote")
    generate.add_argument("--n", type=int, default=70, help="everyday messages, drawn at random")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--recipe", action="append", default=None, help="a recipe name (repeatable; default all)")
    generate.add_argument("--selection", action="store_true",
                          help="also rank notebook 02's response selection (all valid rows; ~6 min a recipe on 2 cores)")
    draw = verbs.add_parser("draw", help="a blind grading set of every recipe's replies")
    draw.add_argument("--out", type=Path, required=True, help="the folder generate wrote")
    draw.add_argument("--set", type=Path, required=True, dest="folder", help="new grading set folder")
    summary = verbs.add_parser("summary", help="the table: blind grade and automatic metrics per recipe")
    summary.add_argument("--set", type=Path, required=True, dest="folder")
    args = parser.parse_args(argv)
    with exit_on_user_error(parser.prog):
        {"train": train_recipes, "generate": generate_replies, "draw": draw_set, "summary": print_summary}[args.verb](args)
    return 0


def train_recipes(args) -> None:
    from ohlora_utils.data import load_fine_tuning
    from ohlora_utils.finetune import train_task
    from ohlora_utils.profiles import get_profile
    from ohlora_utils.recipe_study import RECIPES, REPLY, recipe_config

    profile, frame = get_profile(), load_fine_tuning()
    train_rows = int((frame["data_type"] == "train").sum())
    for name in args.recipe or list(RECIPES):
        config = recipe_config(name, train_rows)
        result = train_task(REPLY, profile, config, frame, out_dir=args.out / RECIPES[name].folder / REPLY)
        print(f"[{name}] {result.steps} steps in {result.seconds / 60:.1f} min → {result.adapter_dir}", flush=True)


def generate_replies(args) -> None:
    import pandas as pd

    from ohlora_utils.adapters import read_adapter_meta
    from ohlora_utils.data import load_fine_tuning
    from ohlora_utils.decoding_study import DecodingSetting, decoding_replies
    from ohlora_utils.eval_data import load_everyday
    from ohlora_utils.finetune import TRAINING_LOG
    from ohlora_utils.generation import TaskModels, int8_merged_available
    from ohlora_utils.llm_metrics import response_selection
    from ohlora_utils.models import inference_dtype
    from ohlora_utils.profiles import get_profile
    from ohlora_utils.recipe_study import RECIPES, REPLY
    from ohlora_utils.storage import atomic_write_text
    from ohlora_utils.tasks import TASKS
    from ohlora_utils.yardstick import START

    profile = get_profile()
    everyday = load_everyday().sample(args.n, random_state=args.seed)
    chat_decoding = DecodingSetting(decoding=TASKS[REPLY].decoding)
    for name in args.recipe or list(RECIPES):
        folder = args.out / RECIPES[name].folder
        adapter = folder / REPLY
        if (folder / REPLIES).is_file():
            print(f"[{name}] replies there already: kept", flush=True)
            continue
        if not adapter.is_dir():
            print(f"[{name}] no adapter in {adapter}: skipped (run `train` first)", flush=True)
            continue
        meta, log = read_adapter_meta(adapter), pd.read_csv(adapter / TRAINING_LOG)
        kept_step = meta.get("kept_step", meta["steps"])
        models = TaskModels.load(profile, tasks=(REPLY,), adapters={REPLY: adapter}, dtype=inference_dtype(),
                                 restrict_vocabulary=True, merged=(REPLY,),
                                 merged_int8=int8_merged_available())
        replies = decoding_replies(models, everyday["text"].tolist(), chat_decoding, START, args.seed)
        run = {"recipe": name, "train_minutes": meta["train_seconds"] / 60, "steps": meta["steps"],
               "kept_step": kept_step, "valid_loss": float(log.loc[log["step"] == kept_step, "valid_loss"].iloc[-1])}
        if args.selection:
            frame = load_fine_tuning()
            _, selection = response_selection(models, frame[frame["data_type"] == "valid"])
            run |= {"selection_top1": selection["top1"], "selection_mrr": selection["mrr"]}
        atomic_write_text(folder / RUN, json.dumps(run, ensure_ascii=False, indent=1))
        atomic_write_text(folder / REPLIES, replies.assign(recipe=name, id=everyday["id"].to_numpy(),
                                                           kind=everyday["kind"].to_numpy()).to_csv(index=False))
        print(f"[{name}] {len(replies)} replies; valid loss {run['valid_loss']:.3f}", flush=True)
        del models


def draw_set(args) -> None:
    import pandas as pd

    from ohlora_utils import grading
    from ohlora_utils.recipe_study import RECIPES, RUNS_FILE
    from ohlora_utils.storage import atomic_write_text

    folders = [args.out / recipe.folder for recipe in RECIPES.values() if (args.out / recipe.folder / REPLIES).is_file()]
    replies = pd.concat([pd.read_csv(folder / REPLIES, keep_default_na=False) for folder in folders])
    sheet = grading.draw_every(replies, "recipe", args.folder)
    runs = pd.DataFrame([json.loads((folder / RUN).read_text(encoding="utf-8")) for folder in folders])
    atomic_write_text(args.folder / RUNS_FILE, runs.to_csv(index=False))
    print(f"{len(sheet)} items in {args.folder / 'sheet.csv'} (graders never open key.csv or {RUNS_FILE})")


def print_summary(args) -> None:
    from ohlora_utils.recipe_study import recipe_results
    from ohlora_utils.yardstick import markdown_table

    print(markdown_table(recipe_results(args.folder).round(3)))


if __name__ == "__main__":
    sys.exit(main())
