"""What Oh-LoRA remembers about each user: ``[key: value]`` items in one SQLite file, with time and user.

Usage::

    store = MemoryStore(default_database_path(), user="minsu")   # clock=ManualClock(...) for demos/tests
    store.add("[오늘 일정: 치과 진료]")      # AddResult(status='added', …)
    store.items()                            # ['[오늘 일정: 치과 진료]'] — what retrieval sees now
    item, score = store.retrieve("이따 뭐 하더라?", load_retriever())

Every row carries the user id and the time it was saved (from the injected clock); each change is one
transaction, so two chats writing at once lose and duplicate nothing. The original kept a text file with
one item per line; ``import_text`` / ``export_text`` read and write that format.

Like the original, an item equal to a stored one ignoring spaces is not added again. Two policies go
past the original where it failed its users; switch both off to reproduce it exactly:

- ``replace_same_key``: a new value for a key already held replaces the old one (``[오늘 일정: A]`` then
  ``[오늘 일정: B]`` keeps only B) instead of piling up contradictions.
- ``follow_calendar``: day-relative keys (오늘 / 내일 / 모레 …) move with the calendar day they were saved
  on: a ``내일 일정`` saved yesterday is today's ``오늘 일정``; a ``오늘 일정`` or ``오늘 날씨`` of an earlier day
  is past — kept in the file (``rows(include_past=True)``) but no longer listed or retrieved.
  Days are the conversation's days (``timeinfo.chat_day``): like time info, the hours before 04:00 still
  belong to the previous day, so "내일" said at 01:00 rolls over at 04:00, not at midnight.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from .errors import OhloraError
from .formats import format_memory_item, parse_memory_item
from .paths import artifacts_dir
from .storage import atomic_write_text, database_errors, open_database, transaction
from .timeinfo import chat_day

DATABASE_NAME = "memory.sqlite"   # under artifacts_dir(): every user's memories, one file
DEFAULT_USER = "local"            # the user id of a single-user chat
DAY_WORDS = {"오늘": 0, "내일": 1, "모레": 2}   # day-relative key words and their offset from the saving day
DAY_OF_OFFSET = {days: word for word, days in DAY_WORDS.items()}
DAY_KEY = re.compile(r"^(" + "|".join(DAY_WORDS) + r")\s+(\S.*)$")   # "내일 일정" → ("내일", "일정")

SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS memory_items_user ON memory_items(user_id, id)
"""


def default_database_path() -> Path:
    return artifacts_dir() / DATABASE_NAME


def without_spaces(text: str) -> str:
    """The original's duplicate test compares items with every space removed."""
    return text.replace(" ", "")


def key_on(key: str, saved_on, today) -> str | None:
    """The key as of ``today`` for a key saved on ``saved_on`` (dates); None once its day has passed."""
    match = DAY_KEY.match(key)
    if not match:
        return key
    offset = DAY_WORDS[match.group(1)] - (today - saved_on).days
    if offset < 0:
        return None
    return f"{DAY_OF_OFFSET[offset]} {match.group(2)}" if offset in DAY_OF_OFFSET else key


class ManualClock:
    """A clock that only moves when told to (notebook demos and tests): ``clock.advance(days=1)``."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True)
class StoredMemory:
    id: int
    user: str
    key: str              # as saved
    value: str
    created_at: datetime
    current_key: str | None   # the key as of now (calendar policy); None when its day has passed

    @property
    def item(self) -> str:
        """The item as retrieval sees it now."""
        return format_memory_item(self.current_key or self.key, self.value)


@dataclass(frozen=True)
class AddResult:
    status: str                     # "added", "duplicate" (equal to a stored item ignoring spaces) or "replaced"
    item: str                       # the item as given, normalised to "[key: value]"
    replaced: tuple[str, ...] = ()  # the items it replaced (same key, other value)


class MemoryStore:
    """One user's memories in an SQLite file shared by every user (see the module docstring)."""

    def __init__(self, path: Path | str | None = None, user: str = DEFAULT_USER,
                 clock: Callable[[], datetime] = datetime.now, replace_same_key: bool = True,
                 follow_calendar: bool = True):
        if not isinstance(user, str) or not user.strip():
            raise OhloraError("the user id is empty", fix="pass a non-blank user id")
        self.path = Path(path or default_database_path())
        self.user, self.clock = user.strip(), clock
        self.replace_same_key, self.follow_calendar = replace_same_key, follow_calendar
        self.connection = open_database(self.path, SCHEMA)

    # --- reading ---

    def rows(self, include_past: bool = False) -> list[StoredMemory]:
        """This user's rows in the order they were saved (past day-relative rows only if asked)."""
        today = chat_day(self.clock())
        with database_errors(self.path):
            fetched = self.connection.execute(
                "SELECT id, key, value, created_at FROM memory_items WHERE user_id = ? ORDER BY id",
                (self.user,)).fetchall()
        rows = []
        for row_id, key, value, created_at in fetched:
            created = datetime.fromisoformat(created_at)
            current = key_on(key, chat_day(created), today) if self.follow_calendar else key
            if current is not None or include_past:
                rows.append(StoredMemory(row_id, self.user, key, value, created, current))
        return rows

    def items(self) -> list[str]:
        """The items retrieval sees now, one ``[key: value]`` each; ``[]`` for an empty store."""
        return [row.item for row in self.rows()]

    def __len__(self) -> int:
        return len(self.rows())

    # --- changing ---

    def add(self, item: str) -> AddResult:
        """Store ``item`` (exactly one ``[key: value]``) unless an equal one is held; see the policies."""
        with transaction(self.connection, self.path):
            return self._add(_parse(item), self.clock())

    def _add(self, key_value: tuple[str, str], now: datetime) -> AddResult:
        key, value = key_value
        item = format_memory_item(key, value)
        # read inside the caller's transaction: no other writer can change the rows before the insert
        held = self.rows(include_past=not self.follow_calendar)
        if any(without_spaces(row.item) == without_spaces(item) for row in held):
            return AddResult("duplicate", item)
        replaced = []
        if self.replace_same_key:
            replaced = [row for row in held if without_spaces(row.current_key or row.key) == without_spaces(key)]
            self.connection.executemany("DELETE FROM memory_items WHERE id = ?", [(row.id,) for row in replaced])
        self.connection.execute("INSERT INTO memory_items(user_id, key, value, created_at) VALUES (?, ?, ?, ?)",
                                (self.user, key, value, now.isoformat()))
        return AddResult("replaced" if replaced else "added", item, tuple(row.item for row in replaced))

    def delete(self, item: str) -> int:
        """Remove the held items equal to ``item`` ignoring spaces; how many were removed (0: none held)."""
        target = without_spaces(format_memory_item(*_parse(item)))
        with transaction(self.connection, self.path):
            ids = [(row.id,) for row in self.rows() if without_spaces(row.item) == target]
            self.connection.executemany("DELETE FROM memory_items WHERE id = ?", ids)
        return len(ids)

    def clear(self) -> int:
        """Remove every row of this user (past ones too); how many were removed."""
        with transaction(self.connection, self.path):
            return self.connection.execute("DELETE FROM memory_items WHERE user_id = ?", (self.user,)).rowcount

    # --- the original's text format: one [key: value] per line ---

    def import_text(self, path: Path | str) -> list[AddResult]:
        """Add every item of a one-item-per-line file in one transaction; a malformed line imports nothing."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise OhloraError(f"cannot read the memory file {path} ({error})",
                              fix="pass a UTF-8 text file with one [key: value] per line") from None
        parsed = {number: parse_memory_item(line) for number, line in enumerate(lines, start=1) if line.strip()}
        bad = [f"line {number}: {lines[number - 1].strip()!r}" for number, item in parsed.items() if item is None]
        if bad:
            raise OhloraError(f"{path}: {len(bad)} line(s) are not one [key: value] — {'; '.join(bad[:5])}",
                              fix="fix or delete those lines (nothing was imported)")
        now = self.clock()
        with transaction(self.connection, self.path):
            return [self._add(key_value, now) for key_value in parsed.values()]

    def export_text(self, path: Path | str) -> int:
        """Write the items held now, one per line (the original's file format); how many were written."""
        items = self.items()
        atomic_write_text(Path(path), "".join(item + "\n" for item in items))
        return len(items)

    # --- retrieval ---

    def retrieve(self, query: str, retriever, threshold: float | None = None) -> tuple[str | None, float]:
        """``retriever.best(query, items held now, threshold)``: ``(None, 0.0)`` for an empty store."""
        return retriever.best(query, self.items(), threshold)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "MemoryStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _parse(item: str) -> tuple[str, str]:
    key_value = parse_memory_item(item) if isinstance(item, str) else None
    if key_value is None:
        raise OhloraError(f"{item!r} is not one [key: value] memory item",
                          fix="write it as [key: value], e.g. [좋아하는 음식: 떡볶이]")
    return key_value
