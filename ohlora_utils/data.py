"""Load the study's three hand-written datasets as validated pandas DataFrames.

Usage: ``train = load_fine_tuning().query("data_type == 'train'")``; ``load_ethics()``; ``load_memory()``

Validation reads every row and names the file, row and column of each problem (a bad category, an
expression label outside the allowed sets, a memory that is not exactly one ``[key: value]``, an
``eyes_mouth_pose`` that disagrees with ``eyes``/``mouth``/``pose``, an empty required cell, a prompt with
both a summary and a memory prefix, a reply naming the wrong weekday, a duplicate) and refuses to go on.
Row numbers are the file's line numbers (the header is line 1), so an editor jumps straight there.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from .errors import OhloraError
from .formats import (EYES_LABELS, MOUTH_LABELS, POSE_LABELS, format_expression, format_memory_item,
                      parse_memory_item,
                      split_context)
from .paths import DATA_DIR
from .tasks import MEMORY_KEYS
from .timeinfo import has_time_word, wrong_weekday_mentions

FINE_TUNING_CSV = DATA_DIR / "fine_tuning" / "ohlora_fine_tuning.csv"
ETHICS_CSV = DATA_DIR / "ethics" / "ethics_dataset.csv"
MEMORY_CSV = DATA_DIR / "memory" / "memory_dataset.csv"

FINE_TUNING_COLUMNS = ("data_type", "input_data", "output_message", "summary", "memory",
                       "eyes_mouth_pose", "eyes", "mouth", "pose")
ETHICS_COLUMNS = ("text", "category", "split")
MEMORY_COLUMNS = ("key", "value", "message", "split")
MEMORY_SPLITS = ("train", "valid", "test")   # valid: where the retrieval threshold is chosen
ETHICS_CATEGORIES = ("사랑 고백/만남", "일반", "정치", "패드립")  # the classifier's four category names
REFUSAL_WORDS = ("미안", "부담")     # a refusal reply contains one; the ethics rule reads this
MAX_ERRORS_SHOWN = 15                # more problems than this are counted, not listed


def is_refusal(reply) -> bool:
    """Oh-LoRA's reply declines (contains 미안 or 부담): what the ethics rule and the training preset read."""
    return isinstance(reply, str) and any(word in reply for word in REFUSAL_WORDS)


@dataclass(frozen=True)
class Problem:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.line}, column {self.column}: {self.message}"


class DataValidationError(OhloraError):
    def __init__(self, path: Path, problems: list[Problem]):
        self.path, self.problems = Path(path), problems
        listed = "; ".join(map(str, problems[:MAX_ERRORS_SHOWN]))
        more = f"; … and {len(problems) - MAX_ERRORS_SHOWN} more" if len(problems) > MAX_ERRORS_SHOWN else ""
        super().__init__(f"{_shown(path)}: {len(problems)} problem(s) — {listed}{more}",
                         fix="fix these cells (row = line number in the file) and run again")


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(DATA_DIR.parent))
    except ValueError:
        return str(path)


def _undecodable(path: Path, raw: bytes) -> list[Problem]:
    """Where ``raw`` is not UTF-8, or holds a NUL byte: the line and the character on that line."""
    problems = []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        good = raw[:error.start].decode("utf-8-sig", errors="replace")
        line, column = good.count("\n") + 1, len(good) - good.rfind("\n")
        return [Problem(line, f"(character {column})",
                        f"byte 0x{raw[error.start]:02x} is not UTF-8: save the file as UTF-8")]
    for line, content in enumerate(text.split("\n"), start=1):
        if "\0" in content:
            problems.append(Problem(line, f"(character {content.index(chr(0)) + 1})",
                                    "holds a NUL byte (a damaged or binary file?)"))
    return problems


def read_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` pairs; a missing file, wrong header or ragged row is a DataValidationError.

    So is a file that is not UTF-8, holds a NUL byte, or has a quote that is never closed: each is named
    by its line, so the problem can be found in an editor.
    """
    path = Path(path)
    if not path.is_file():
        raise OhloraError(f"dataset file {_shown(path)} does not exist",
                          fix="restore it from git (git checkout -- data/)")
    raw = path.read_bytes()
    if problems := _undecodable(path, raw):
        raise DataValidationError(path, problems)
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), strict=True)
    try:
        header = next(reader, [])
    except csv.Error as error:
        raise DataValidationError(path, [Problem(1, "(header)", f"is not valid CSV: {error}")]) from None
    if tuple(header) != columns:
        raise DataValidationError(path, [Problem(1, "(header)",
                                                 f"expected columns {', '.join(columns)}; found {', '.join(header)}")])
    rows, problems = [], []
    while True:
        started = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            what = ("a quote opened here is never closed" if "unexpected end of data" in str(error)
                    else f"is not valid CSV: {error}")
            problems.append(Problem(started, "(all)", what))
            break
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            problems.append(Problem(line, "(all)", f"has {len(cells)} cells, expected {len(columns)}"))
            continue
        rows.append((line, dict(zip(columns, cells))))
    if problems:
        raise DataValidationError(path, problems)
    return rows


def validate_rows(path: Path, columns: tuple[str, ...], check_row: Callable[[int, dict], list[Problem]],
              unique: tuple[str, ...]) -> pd.DataFrame:
    """Rows of ``path`` checked by ``check_row`` and for duplicates of ``unique``; index = line number."""
    rows = read_rows(path, columns)
    problems, seen = [], {}
    for line, row in rows:
        problems += check_row(line, row)
        identity = tuple(row[c].strip() for c in unique)
        if identity in seen:
            problems.append(Problem(line, "+".join(unique), f"duplicates row {seen[identity]}"))
        seen.setdefault(identity, line)
    if problems:
        raise DataValidationError(path, problems)
    frame = pd.DataFrame([row for _, row in rows], columns=list(columns))
    frame.insert(0, "line", [line for line, _ in rows])
    return frame.set_index("line")


def _required(line: int, row: dict, names) -> list[Problem]:
    return [Problem(line, name, "is empty") for name in names if not row[name].strip()]


def _one_of(line: int, row: dict, name: str, allowed) -> list[Problem]:
    if row[name] in allowed or not row[name].strip():
        return []
    return [Problem(line, name, f"{row[name]!r} is not one of {', '.join(allowed)}")]


def check_fine_tuning_row(line: int, row: dict) -> list[Problem]:
    problems = _required(line, row, [c for c in FINE_TUNING_COLUMNS if c != "memory"])
    problems += _one_of(line, row, "data_type", ("train", "valid"))
    problems += _one_of(line, row, "eyes", EYES_LABELS)
    problems += _one_of(line, row, "mouth", MOUTH_LABELS)
    problems += _one_of(line, row, "pose", POSE_LABELS)
    expected = format_expression(row["eyes"], row["mouth"], row["pose"])
    if row["eyes_mouth_pose"].strip() and row["eyes_mouth_pose"] != expected:
        problems.append(Problem(line, "eyes_mouth_pose",
                                f"{row['eyes_mouth_pose']!r} disagrees with eyes/mouth/pose ({expected!r})"))
    item = parse_memory_item(row["memory"]) if row["memory"].strip() else None
    if row["memory"].strip() and item is None:
        problems.append(Problem(line, "memory", f"{row['memory']!r} is not exactly one [key: value]"))
    if item and item[0] not in MEMORY_KEYS:
        problems.append(Problem(line, "memory", f"key {item[0]!r} is not one of the memory keys: {', '.join(MEMORY_KEYS)} "
                                                f"(ohlora_utils/tasks.py; add a new key there and to data/README.md)"))
    parts = split_context(row["input_data"])
    if parts.memory and parts.summary:
        problems.append(Problem(line, "input_data", "has both a summary prefix and a memory prefix"))
    if parts.time_info:
        if not has_time_word(parts.user_text):
            problems.append(Problem(line, "input_data", "has time info but no time word (오늘 내일 지금 요일 이따 휴일)"))
        weekday = parts.time_info.split()[1]
        if wrong := wrong_weekday_mentions(row["output_message"], weekday):
            problems.append(Problem(line, "output_message", f"names {', '.join(wrong)} but it is {weekday}"))
    return problems


def check_ethics_row(line: int, row: dict) -> list[Problem]:
    return (_required(line, row, ETHICS_COLUMNS) + _one_of(line, row, "category", ETHICS_CATEGORIES)
            + _one_of(line, row, "split", ("train", "valid", "test")))


def check_memory_row(line: int, row: dict) -> list[Problem]:
    problems = (_required(line, row, MEMORY_COLUMNS) + _one_of(line, row, "split", MEMORY_SPLITS)
                + _one_of(line, row, "key", MEMORY_KEYS))
    for name in ("key", "value"):
        if any(ch in row[name] for ch in "[]:"):
            problems.append(Problem(line, name, f"{row[name]!r} must not contain [, ] or :"))
    return problems


def load_fine_tuning(path: Path = FINE_TUNING_CSV) -> pd.DataFrame:
    return validate_rows(path, FINE_TUNING_COLUMNS, check_fine_tuning_row, unique=("input_data", "output_message"))


def load_ethics(path: Path = ETHICS_CSV) -> pd.DataFrame:
    return validate_rows(path, ETHICS_COLUMNS, check_ethics_row, unique=("text",))


def load_memory(path: Path = MEMORY_CSV) -> pd.DataFrame:
    frame = validate_rows(path, MEMORY_COLUMNS, check_memory_row, unique=("message",))
    frame["memory"] = [format_memory_item(k, v) for k, v in zip(frame["key"], frame["value"])]
    return frame


def prefix_kind(input_data: str) -> str:
    """Which context the prompt carries: ``memory``, ``summary``, or ``plain`` (time info is separate)."""
    parts = split_context(input_data)
    return "memory" if parts.memory else "summary" if parts.summary else "plain"


def has_time_info(input_data: str) -> bool:
    return split_context(input_data).time_info is not None
