"""Escalating sanctions for the ethics categories: the table, a log on SQLite, block status, user messages.

Usage::

    log = SanctionLog(path, clock=lambda: datetime(2025, 5, 1, 21, 0, tzinfo=KST))
    turn = log.record("user-1", ["패드립", "정치"])   # one row per reason; levels escalate per reason
    print(turn.message)                              # the warning or block notice the user sees
    status = log.block_status("user-1", now)         # blocked?, until when, why (status.message)

``replay(path, user_id, start, script)`` plays a scripted persistent user with a moving clock (notebook 04).

Rules (docs/ethics.md): a reason's level is the highest level it reached before for that user + 1, and its
period comes from ``ESCALATION``; the periods of every reason in one turn add up, capped at
``MAX_BLOCK``. A turn whose periods are all zero is a warning (the chat goes on); otherwise the user is
blocked from the turn's start for that long. Every reason of a turn is kept as its own row (the original
kept only the last one).

A database that is locked, read-only or damaged never makes ``record`` raise in the middle of a turn:
the turn's rows are kept in memory and appended to ``<database>.unsaved.jsonl`` next to it, and are
written on the next call that reaches the database (also by the next process that opens it), each row
exactly once; their levels come from what can still be read, else from what this session has seen.
Opening a file that is not a SQLite database is a clear error that leaves the file alone.
"""
from __future__ import annotations

import json
import os
import sqlite3
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

from .data import ETHICS_CATEGORIES
from .errors import OhloraError
from .storage import database_errors, open_database, transaction

LOVE, _GENERAL, POLITICS, INSULT = ETHICS_CATEGORIES
WARNING = timedelta(0)   # a level whose period is zero is a warning: shown, and the chat goes on

# Period per level (index 0 = level 1); a level past the end uses the last entry (docs/ethics.md).
ESCALATION: dict[str, tuple[timedelta, ...]] = {
    LOVE: (WARNING, timedelta(hours=1), timedelta(days=1), timedelta(days=14), timedelta(days=1461)),
    POLITICS: (WARNING, timedelta(days=3), timedelta(days=7), timedelta(days=30), timedelta(days=365)),
    INSULT: (timedelta(days=7), timedelta(days=30), timedelta(days=1461), timedelta(days=1461),
             timedelta(days=1461)),
}
REASONS = tuple(ESCALATION)            # the categories that lead to sanctions, in table order
MAX_BLOCK = timedelta(days=1461)       # cap on the summed periods of one turn (about four years)
REASON_LABELS = {                      # how a reason is named to the user
    LOVE: "사랑 고백·만남 요청",
    POLITICS: "정치 이야기",
    INSULT: "가족을 욕하는 말(패드립)",
}
UNSAVED_SUFFIX = ".unsaved.jsonl"      # rows not yet in the database, next to it
DATABASE_NAME = "sanctions.sqlite"     # under artifacts_dir(), next to the memory store
# what a locked / read-only / damaged database raises (storage turns most into OhloraError; a ROLLBACK
# after SQLite already rolled back, or a vanished folder, raises the plain kinds)
DATABASE_TROUBLE = (OhloraError, sqlite3.Error, OSError)

SCHEMA = """
CREATE TABLE IF NOT EXISTS sanction (
    id INTEGER PRIMARY KEY,
    row_key TEXT NOT NULL UNIQUE,        -- random id: a row written twice is stored once
    user_id TEXT NOT NULL,
    turn TEXT NOT NULL,                  -- rows of one chat turn share it
    reason TEXT NOT NULL,
    level INTEGER NOT NULL CHECK (level >= 1),
    start TEXT NOT NULL,                 -- ISO 8601, UTC
    period_s INTEGER NOT NULL CHECK (period_s >= 0)   -- seconds, 0 = warning
);
CREATE INDEX IF NOT EXISTS sanction_user_reason ON sanction(user_id, reason);
CREATE TABLE IF NOT EXISTS sanction_lift (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    at TEXT NOT NULL,                    -- ISO 8601, UTC: every sanction of the user that started by then is lifted
    why TEXT NOT NULL CHECK (length(trim(why)) > 0),
    rows_lifted INTEGER NOT NULL
)
"""


def period_for(reason: str, level: int) -> timedelta:
    """The sanction period of ``reason`` at ``level`` (1 = first time)."""
    steps = ESCALATION[_known_reason(reason)]
    return steps[min(max(level, 1), len(steps)) - 1]


def _known_reason(reason: str) -> str:
    if reason not in ESCALATION:
        raise OhloraError(f"unknown sanction reason {reason!r}", fix=f"use one of: {', '.join(REASONS)}")
    return reason


def escalation_table() -> list[dict[str, str]]:
    """The escalation table as rows (level, then one readable period per reason) for display."""
    depth = max(len(steps) for steps in ESCALATION.values())
    return [{"level": f"{level}+" if level == depth else str(level),
             **{reason: format_period(period_for(reason, level)) for reason in REASONS}}
            for level in range(1, depth + 1)]


@dataclass(frozen=True)
class SanctionRow:
    user_id: str
    turn: str          # shared by the rows of one chat turn
    reason: str        # one of REASONS
    level: int         # 1 = first time for this user and reason
    start: datetime    # when the turn happened (timezone-aware)
    period: timedelta  # WARNING (zero) or the block length this reason adds
    row_key: str       # unique id, so a row retried after a failure is stored once


def turn_block(rows: Iterable[SanctionRow]) -> timedelta:
    """How long one turn blocks: its reasons' periods added up, capped at MAX_BLOCK."""
    return min(sum((row.period for row in rows), timedelta(0)), MAX_BLOCK)


@dataclass(frozen=True)
class TurnSanction:
    """What one turn's ethics verdict did: its rows, and whether the user is now blocked."""
    rows: tuple[SanctionRow, ...]
    blocked_until: datetime | None   # None: nothing, or only warnings
    saved: bool = True               # False: kept in memory / the .unsaved.jsonl file until the database works
    problem: str | None = None       # why it was not saved

    @property
    def is_warning(self) -> bool:
        return bool(self.rows) and self.blocked_until is None

    @property
    def message(self) -> str:
        """What the user sees: a warning (the chat goes on), a block notice (the chat ends), or ''."""
        if not self.rows:
            return ""
        if self.blocked_until is None:
            return warning_message(self.rows)
        return block_message(self.rows, self.blocked_until)


@dataclass(frozen=True)
class Lift:
    """A person lifted a user's sanctions (a mistaken block): the rows stay, they no longer count."""
    user_id: str
    at: datetime       # every sanction of the user that started by this moment is lifted
    why: str
    rows_lifted: int


@dataclass(frozen=True)
class BlockStatus:
    blocked: bool
    until: datetime | None                  # end of the block, in the timezone of the ``now`` asked about
    rows: tuple[SanctionRow, ...] = ()      # the turn that blocks: its reasons, levels and periods
    problem: str | None = None              # the database could not be read: answered from this session's rows

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(row.reason for row in self.rows)

    @property
    def message(self) -> str:
        """What a blocked user sees instead of a chat ('' when not blocked)."""
        if not self.blocked:
            return ""
        return (f"🚫 지금은 오로라와 대화할 수 없어요. {format_time(self.until)}까지 대화가 차단된 상태예요.\n"
                f"사유: {_reasons_text(self.rows)}. 차단이 끝나면 다시 이야기해요.")


def format_period(period: timedelta) -> str:
    """``경고`` for zero, else days/hours/minutes in Korean (``3일 1시간``)."""
    if period <= timedelta(0):
        return "경고"
    minutes = int(period.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}일" if days else "", f"{hours}시간" if hours else "", f"{minutes}분" if minutes else ""]
    return " ".join(part for part in parts if part)


def format_time(moment: datetime) -> str:
    return f"{moment.year}년 {moment.month}월 {moment.day}일 {moment.hour:02d}:{moment.minute:02d}"


def _reasons_text(rows: Iterable[SanctionRow]) -> str:
    return ", ".join(f"{REASON_LABELS[row.reason]} {row.level}번째 ({format_period(row.period)})" for row in rows)


def warning_message(rows: Iterable[SanctionRow]) -> str:
    named = ", ".join(f"{REASON_LABELS[row.reason]} {row.level}번째" for row in rows)
    return (f"⚠️ 경고: {named}.\n"
            "오로라와는 이런 이야기를 나눌 수 없어요. 다시 그러면 한동안 대화가 차단돼요.")


def block_message(rows: Iterable[SanctionRow], until: datetime) -> str:
    rows = list(rows)
    total = format_period(turn_block(rows))
    return (f"🚫 대화가 {total} 동안 차단됐어요. 사유: {_reasons_text(rows)}.\n"
            f"{format_time(until)}까지는 대화를 시작할 수 없어요. 그때 다시 만나요.")


def _aware(moment: datetime) -> datetime:
    """A timezone-aware datetime (a naive one is taken as local time)."""
    if not isinstance(moment, datetime):
        raise OhloraError(f"the sanction clock gave {moment!r}, not a datetime",
                          fix="pass a clock that returns datetime objects")
    return moment if moment.tzinfo is not None else moment.astimezone()


def _local_clock() -> datetime:
    return datetime.now().astimezone()


def _lifted(row: SanctionRow, lift_times: dict[str, datetime]) -> bool:
    return row.user_id in lift_times and row.start <= lift_times[row.user_id]


def _row_to_json(row: SanctionRow) -> str:
    data = asdict(row)
    data["start"] = row.start.astimezone(timezone.utc).isoformat()
    data["period"] = int(row.period.total_seconds())
    return json.dumps(data, ensure_ascii=False)


def _row_from_json(line: str) -> SanctionRow:
    data = json.loads(line)
    data["start"] = datetime.fromisoformat(data["start"])
    data["period"] = timedelta(seconds=data["period"])
    return SanctionRow(**data)


class SanctionLog:
    """The sanction log of every user, in one SQLite file; time comes from ``clock`` (injectable)."""

    def __init__(self, path: Path, clock: Callable[[], datetime] | None = None):
        self.path = Path(path)
        self.clock = clock or _local_clock
        self.unsaved_path = self.path.with_name(self.path.name + UNSAVED_SUFFIX)
        self._connection = open_database(self.path, SCHEMA)  # a non-database file: clear error, file kept
        self._pending: list[SanctionRow] = self._read_unsaved_file()
        self._seen_levels: dict[tuple[str, str], int] = {}   # (user, reason) → highest level this session saw
        if self._pending:
            self._try_flush()

    # --- writing -----------------------------------------------------------------------------------

    def record(self, user_id: str, reasons: Iterable[str], now: datetime | None = None) -> TurnSanction:
        """Log one turn's reasons (one row each) and return what they do; never raises for database trouble."""
        reasons = list(dict.fromkeys(_known_reason(reason) for reason in reasons))  # one row per reason
        if not reasons:
            return TurnSanction((), None)
        now = _aware(now or self.clock())
        turn = uuid.uuid4().hex
        try:
            with transaction(self._connection, self.path):
                self._insert(self._pending)
                rows = self._new_rows(user_id, turn, reasons, now, self._stored_levels(user_id))
                self._insert(rows)
            self._pending_saved()
            saved, problem = True, None
            self._remember(rows)
        except DATABASE_TROUBLE as error:
            rows = self._new_rows(user_id, turn, reasons, now, self._levels_without_database(user_id))
            problem = self._keep_unsaved(rows, error)
            saved = False
        blocked = turn_block(rows) > timedelta(0)
        return TurnSanction(tuple(rows), now + turn_block(rows) if blocked else None, saved, problem)

    def _new_rows(self, user_id, turn, reasons, now, past_levels: dict[str, int]) -> list[SanctionRow]:
        pending = self._pending_levels(user_id)
        rows = []
        for reason in reasons:
            level = max(past_levels.get(reason, 0), pending.get(reason, 0),
                        self._seen_levels.get((user_id, reason), 0)) + 1
            rows.append(SanctionRow(user_id, turn, reason, level, now, period_for(reason, level), uuid.uuid4().hex))
        return rows

    def _insert(self, rows: list[SanctionRow]) -> None:
        self._connection.executemany(
            "INSERT OR IGNORE INTO sanction(row_key, user_id, turn, reason, level, start, period_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(row.row_key, row.user_id, row.turn, row.reason, row.level,
              row.start.astimezone(timezone.utc).isoformat(), int(row.period.total_seconds())) for row in rows])

    def _stored_levels(self, user_id: str) -> dict[str, int]:
        """Each reason's highest level since the user's last lift (lifted sanctions do not escalate)."""
        lifted_at = self._last_lift(user_id)
        levels: dict[str, int] = {}
        for reason, level, start in self._connection.execute(
                "SELECT reason, level, start FROM sanction WHERE user_id = ?", (user_id,)).fetchall():
            if lifted_at is None or datetime.fromisoformat(start) > lifted_at:
                levels[reason] = max(levels.get(reason, 0), level)
        for reason in REASONS:   # the database is the truth: forget what a lift has lifted
            self._seen_levels[(user_id, reason)] = levels.get(reason, 0)
        return levels

    def _last_lift(self, user_id: str) -> datetime | None:
        (at,) = self._connection.execute("SELECT max(at) FROM sanction_lift WHERE user_id = ?", (user_id,)).fetchone()
        return datetime.fromisoformat(at) if at else None

    def _remember(self, rows: Iterable[SanctionRow]) -> None:
        for row in rows:
            key = (row.user_id, row.reason)
            self._seen_levels[key] = max(self._seen_levels.get(key, 0), row.level)

    def _levels_without_database(self, user_id: str) -> dict[str, int]:
        """Past levels when writing failed: read them if reading still works, else what this session saw."""
        try:
            with database_errors(self.path):
                return self._stored_levels(user_id)
        except DATABASE_TROUBLE:
            return {}

    def _pending_levels(self, user_id: str) -> dict[str, int]:
        levels: dict[str, int] = {}
        for row in self._pending:
            if row.user_id == user_id:
                levels[row.reason] = max(levels.get(row.reason, 0), row.level)
        return levels

    # --- rows the database did not take yet ------------------------------------------------------

    def _keep_unsaved(self, rows: list[SanctionRow], error: Exception) -> str:
        self._pending.extend(rows)
        problem = f"the sanction could not be written yet ({error})"
        try:
            with open(self.unsaved_path, "a", encoding="utf-8") as handle:  # appends survive a crash
                handle.writelines(_row_to_json(row) + "\n" for row in rows)
                handle.flush()
                os.fsync(handle.fileno())
            return problem + f"; kept in {self.unsaved_path.name} and written when the database works again"
        except OSError as cause:
            return problem + f"; kept in memory only ({cause}): keep this session open until it is saved"

    def _read_unsaved_file(self) -> list[SanctionRow]:
        if not self.unsaved_path.is_file():
            return []
        rows = {}
        for line in self.unsaved_path.read_text(encoding="utf-8").splitlines():
            try:
                row = _row_from_json(line)
            except (ValueError, TypeError, KeyError):
                continue  # a line cut short by a crash while appending: the rest are intact
            rows[row.row_key] = row
        return list(rows.values())

    def _try_flush(self) -> str | None:
        """Write the pending rows; None on success, else why not (they stay pending)."""
        if not self._pending:
            return None
        try:
            with transaction(self._connection, self.path):
                self._insert(self._pending)
        except DATABASE_TROUBLE as error:
            return str(error)
        self._pending_saved()
        return None

    def _pending_saved(self) -> None:
        self._pending = []
        self.unsaved_path.unlink(missing_ok=True)

    @property
    def unsaved_rows(self) -> tuple[SanctionRow, ...]:
        """Rows not in the database yet (a locked, read-only or damaged file)."""
        return tuple(self._pending)

    # --- reading -----------------------------------------------------------------------------------

    def rows(self, user_id: str | None = None) -> list[SanctionRow]:
        """Every stored row (of ``user_id``, when given), oldest first, then the ones not yet saved."""
        query = "SELECT user_id, turn, reason, level, start, period_s, row_key FROM sanction"
        query += " WHERE user_id = ? ORDER BY id" if user_id is not None else " ORDER BY id"
        with database_errors(self.path):
            stored = self._connection.execute(query, (user_id,) if user_id is not None else ()).fetchall()
        rows = [SanctionRow(user, turn, reason, level, datetime.fromisoformat(start), timedelta(seconds=period), key)
                for user, turn, reason, level, start, period, key in stored]
        lift_times = self._lift_times()
        self._remember([row for row in rows if not _lifted(row, lift_times)])
        keys = {row.row_key for row in rows}
        return rows + [row for row in self._pending
                       if row.row_key not in keys and (user_id is None or row.user_id == user_id)]

    def lifts(self, user_id: str | None = None) -> list[Lift]:
        """Every lift (of ``user_id``, when given), oldest first."""
        query = "SELECT user_id, at, why, rows_lifted FROM sanction_lift"
        query += " WHERE user_id = ? ORDER BY id" if user_id is not None else " ORDER BY id"
        with database_errors(self.path):
            found = self._connection.execute(query, (user_id,) if user_id is not None else ()).fetchall()
        return [Lift(user, datetime.fromisoformat(at), why, count) for user, at, why, count in found]

    def _lift_times(self) -> dict[str, datetime]:
        """Each user's last lift."""
        with database_errors(self.path):
            found = self._connection.execute("SELECT user_id, max(at) FROM sanction_lift GROUP BY user_id").fetchall()
        return {user: datetime.fromisoformat(at) for user, at in found}

    def lift(self, user_id: str, why: str, now: datetime | None = None) -> Lift:
        """Lift every sanction of ``user_id`` that started by ``now``: a mistaken block ends at once.

        Nothing is deleted: a lifting row is added and the history shows both. Lifted sanctions no longer
        count toward the next level (a mistaken block must not make the next one longer); a later offence
        starts again at level 1. A database in trouble is a clear error here (a person is waiting for it).
        """
        if not isinstance(user_id, str) or not user_id.strip():
            raise OhloraError("no user given", fix="name the user whose sanctions to lift (--user)")
        if not isinstance(why, str) or not why.strip():
            raise OhloraError("a lift needs a reason", fix='say why (--why "…"); it stays in the history')
        now = _aware(now or self.clock())
        self._try_flush()
        with transaction(self._connection, self.path):
            lifted_at = self._last_lift(user_id)
            starts = [datetime.fromisoformat(start) for (start,) in self._connection.execute(
                "SELECT start FROM sanction WHERE user_id = ?", (user_id,)).fetchall()]
            count = sum(start <= now and (lifted_at is None or start > lifted_at) for start in starts)
            if count == 0:
                raise OhloraError(f"user {user_id!r} has no sanction to lift",
                                  fix="check the user id (python -m ohlora_utils.sanctions history --user …)")
            self._connection.execute("INSERT INTO sanction_lift(user_id, at, why, rows_lifted) VALUES (?, ?, ?, ?)",
                                     (user_id, now.astimezone(timezone.utc).isoformat(), why.strip(), count))
        for reason in REASONS:
            self._seen_levels[(user_id, reason)] = 0
        return Lift(user_id, now, why.strip(), count)

    def block_status(self, user_id: str, now: datetime | None = None) -> BlockStatus:
        """Whether ``user_id`` is blocked at ``now`` (default: the clock), until when and why."""
        now = _aware(now or self.clock())
        problem = self._try_flush()
        try:
            rows = self.rows(user_id)
        except DATABASE_TROUBLE as error:
            rows = [row for row in self._pending if row.user_id == user_id]
            problem = f"the sanction database could not be read ({error}); answered from this session's rows"
        try:
            lift_times = self._lift_times()
            rows = [row for row in rows if not _lifted(row, lift_times)]   # a lift ends a block at once
        except DATABASE_TROUBLE:
            pass
        turns: dict[str, list[SanctionRow]] = {}
        for row in rows:
            turns.setdefault(row.turn, []).append(row)
        active = [(turn_rows[0].start + turn_block(turn_rows), turn_rows) for turn_rows in turns.values()
                  if turn_block(turn_rows) > timedelta(0) and turn_rows[0].start + turn_block(turn_rows) > now]
        if not active:
            return BlockStatus(False, None, (), problem)
        until, turn_rows = max(active, key=lambda item: item[0])
        return BlockStatus(True, until.astimezone(now.tzinfo), tuple(turn_rows), problem)

    # --- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Write what is pending if possible (else it stays in the .unsaved.jsonl file) and close."""
        self._try_flush()
        self._connection.close()

    def __enter__(self) -> "SanctionLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- a scripted user, for notebook 04 and the tests ---------------------------------------------------

KST = timezone(timedelta(hours=9), "KST")   # Oh-LoRA's users' time zone (the replay's clock)
RESTART = "restart"                          # replay event: close the log and open the same file anew


def replay(path: Path, user_id: str, start: datetime, script: list[tuple[timedelta, object]]) -> list[str]:
    """Play ``script`` against a sanction log at ``path`` with a clock that jumps to ``start + offset``.

    Each event is ``(offset, (message, reasons))`` — a chat turn whose verdict is ``reasons``, refused
    without a verdict while the user is blocked, as the chat does — or ``(offset, RESTART)``. Returns
    the lines a reader sees (times in the clock's zone).
    """
    now = [start]
    log = SanctionLog(path, clock=lambda: now[0])
    lines = []
    try:
        for offset, event in script:
            now[0] = start + offset
            stamp = f"{now[0]:%m-%d %H:%M}"
            if event == RESTART:
                log.close()
                log = SanctionLog(path, clock=lambda: now[0])
                lines.append(f"{stamp}  ── 재시작: 같은 데이터베이스 파일을 새 연결로 엽니다 ──")
                continue
            message, reasons = event
            lines.append(f"{stamp}  사용자: {message}")
            status = log.block_status(user_id)
            if status.blocked:
                lines += ["               " + line for line in status.message.splitlines()]
                continue
            turn = log.record(user_id, reasons)
            shown = turn.message or "(통과: 오로라가 답합니다)"
            lines.append(f"               판정: {', '.join(reasons) or '-'}")
            lines += ["               " + line for line in shown.splitlines()]
    finally:
        log.close()
    return lines


# --- the command line: a person lifts a mistaken block, or reads a user's history ----------------------

def main(argv: list[str] | None = None) -> None:
    import argparse

    from .errors import exit_on_user_error
    from .paths import artifacts_dir

    parser = argparse.ArgumentParser(prog="python -m ohlora_utils.sanctions",
                                     description="Lift a user's sanctions (a mistaken block), or show their history.")
    parser.add_argument("--database", type=Path, default=None, help=f"default: artifacts/{DATABASE_NAME}")
    verbs = parser.add_subparsers(dest="verb", required=True)
    lift = verbs.add_parser("lift", help="lift every sanction of a user now; the history keeps them")
    lift.add_argument("--user", required=True)
    lift.add_argument("--why", required=True, help="why the sanctions are lifted (kept in the history)")
    history = verbs.add_parser("history", help="a user's sanctions and lifts, oldest first")
    history.add_argument("--user", required=True)
    args = parser.parse_args(argv)
    with exit_on_user_error(parser.prog):
        path = args.database or artifacts_dir() / DATABASE_NAME
        if not path.is_file():
            raise OhloraError(f"there is no sanction database at {path}", fix="pass --database, or chat first")
        with SanctionLog(path) as log:
            if args.verb == "lift":
                done = log.lift(args.user, args.why)
                print(f"lifted {done.rows_lifted} sanction row(s) of {done.user_id} at {format_time(done.at)}: "
                      f"{done.why}")
            events = [(row.start, f"{REASON_LABELS[row.reason]} {row.level}번째 ({format_period(row.period)})")
                      for row in log.rows(args.user)]
            events += [(item.at, f"lifted {item.rows_lifted} row(s): {item.why}") for item in log.lifts(args.user)]
            for moment, text in sorted(events, key=lambda event: event[0]):
                print(f"{format_time(moment.astimezone())}  {text}")
            status = log.block_status(args.user)
            print(status.message.splitlines()[0] if status.blocked else f"{args.user} is not blocked")


if __name__ == "__main__":
    main()
