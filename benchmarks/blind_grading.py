"""Blind grading of Oh-LoRA's replies: draw a sheet, grade it (in the terminal), and score it.

Usage::

    .venv/bin/python benchmarks/blind_grading.py draw --report reports/everyday_chat=default --n 200 \
        --out data/eval/grading/2026-11-30
    .venv/bin/python benchmarks/blind_grading.py grade --set data/eval/grading/2026-11-30 --grader alice
    .venv/bin/python benchmarks/blind_grading.py summary --set data/eval/grading/2026-11-30

``draw`` takes replies from one or more yardstick reports (``benchmarks/everyday_chat.py``), each named by
the recipe that made it (``DIR=NAME``), and, with ``--from-set``, the replies of an earlier graded set under
their recipes (a new recipe graded blind beside an old one); ``n`` per recipe are shuffled together under
opaque item ids.
Graders see ``sheet.csv`` only (message and reply) and the rubric, ``data/eval/grading/RUBRIC.md``;
``key.csv`` says which recipe made which item and is read only by ``summary``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from ohlora_utils.errors import OhloraError, exit_on_user_error
    from ohlora_utils import grading
    from ohlora_utils.yardstick import markdown_table, reply_samples

    parser = argparse.ArgumentParser(prog="benchmarks/blind_grading.py", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    draw = verbs.add_parser("draw", help="draw a blind grading sheet from yardstick reports")
    draw.add_argument("--report", action="append", required=True, metavar="DIR=RECIPE",
                      help="a yardstick report folder and the name of the recipe that made it (repeatable)")
    draw.add_argument("--from-set", type=Path, action="append", default=[], metavar="FOLDER",
                      help="also draw the replies of an earlier graded set, under their recipes (repeatable)")
    draw.add_argument("--n", type=int, default=200, help="replies per recipe")
    draw.add_argument("--seed", type=int, default=0)
    draw.add_argument("--out", type=Path, required=True, help="new folder for sheet.csv and key.csv")
    grade = verbs.add_parser("grade", help="grade a sheet in the terminal (resumable)")
    grade.add_argument("--set", type=Path, required=True, dest="folder")
    grade.add_argument("--grader", required=True, help="your name (letters, digits, - and _)")
    summary = verbs.add_parser("summary", help="score a graded sheet")
    summary.add_argument("--set", type=Path, required=True, dest="folder")
    args = parser.parse_args(argv)
    with exit_on_user_error(parser.prog):
        if args.verb == "draw":
            samples = {}
            for spec in args.report:
                folder, _, recipe = spec.partition("=")
                if not recipe:
                    raise OhloraError(f"--report {spec!r} names no recipe", fix="write it as DIR=RECIPE")
                samples[recipe] = reply_samples(Path(folder))
            for earlier in args.from_set:
                samples |= grading.set_samples(earlier)
            sheet, key = grading.draw(samples, args.n, args.seed)
            grading.write_set(args.out, sheet, key)
            print(f"{len(sheet)} items in {args.out / 'sheet.csv'} (key: {args.out / 'key.csv'} — graders never open it)")
        elif args.verb == "grade":
            return grade_in_terminal(args.folder, args.grader)
        else:
            for title, table in grading.grade_tables(args.folder).items():
                print(f"\n## {title}\n\n{markdown_table(table)}")
    return 0


def grade_in_terminal(folder: Path, grader: str) -> int:
    """Show each ungraded item (message and reply only), read 0 / 1 / 2 and an optional note, save each."""
    import csv
    import io

    from ohlora_utils import grading
    from ohlora_utils.errors import OhloraError
    from ohlora_utils.storage import atomic_write_text

    if not grading.GRADER_NAME.fullmatch(grader):
        raise OhloraError(f"grader name {grader!r} is not letters, digits, - and _", fix="pick a simple name")
    sheet = grading.load_sheet(folder)
    path = Path(folder) / f"grades_{grader}.csv"
    done = grading.load_grades(folder, grader) if path.exists() else None
    rows = [] if done is None else [[r.item, str(r.grade), r.note] for r in done.itertuples()]
    graded = {row[0] for row in rows}
    print(grading.RUBRIC.read_text(encoding="utf-8").split("How to decide:")[0])
    todo = [row for row in sheet.itertuples() if row.item not in graded]
    for number, row in enumerate(todo, start=len(graded) + 1):
        print(f"\n[{number}/{len(sheet)}] {row.item}\n  사용자: {row.message}\n  오로라: {row.reply}")
        answer = ""
        while answer not in grading.GRADES:
            try:
                answer = input("  grade 0 / 1 / 2 (q to stop): ").strip()
            except EOFError:
                answer = "q"
            if answer == "q":
                print(f"stopped; {len(rows)} of {len(sheet)} graded in {path}")
                return 0
        try:
            note = input("  note (optional): ").strip()
        except EOFError:
            note = ""
        rows.append([row.item, answer, note])
        buffer = io.StringIO()
        csv.writer(buffer).writerows([list(grading.GRADE_COLUMNS), *rows])
        atomic_write_text(path, buffer.getvalue())
    print(f"all {len(sheet)} items graded: {path}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
