"""Sanctions: the escalation table, a log that keeps every row, blocks that add up and outlive the process."""
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from ohlora_utils.errors import OhloraError
from ohlora_utils.sanctions import (INSULT, LOVE, MAX_BLOCK, POLITICS, REASONS, RESTART, WARNING, SanctionLog,
                                    escalation_table, format_period, period_for, replay, turn_block)

KST = timezone(timedelta(hours=9))
START = datetime(2025, 5, 1, 21, 0, tzinfo=KST)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now=START):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, by):
        self.now += by


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def log(tmp_path, clock):
    with SanctionLog(tmp_path / "sanctions.sqlite", clock=clock) as opened:
        yield opened


def test_escalation_table_is_the_designs():
    assert REASONS == (LOVE, POLITICS, INSULT)
    assert [period_for(LOVE, level) for level in range(1, 6)] == [WARNING, HOUR, DAY, 14 * DAY, 1461 * DAY]
    assert [period_for(POLITICS, level) for level in range(1, 6)] == [WARNING, 3 * DAY, 7 * DAY, 30 * DAY, 365 * DAY]
    assert [period_for(INSULT, level) for level in range(1, 6)] == [7 * DAY, 30 * DAY] + [1461 * DAY] * 3
    assert period_for(POLITICS, 9) == 365 * DAY  # level 5+ stays at the last entry
    assert escalation_table()[0] == {"level": "1", LOVE: "경고", POLITICS: "경고", INSULT: "7일"}
    assert escalation_table()[-1]["level"] == "5+"
    assert format_period(3 * DAY + HOUR) == "3일 1시간"


def test_unknown_reason_is_a_clear_error(log):
    with pytest.raises(OhloraError, match="unknown sanction reason '일반'"):
        log.record("u", ["일반"])
    assert log.rows() == []


def test_no_reason_records_nothing(log):
    turn = log.record("u", [])
    assert turn.rows == () and turn.message == "" and log.rows() == []


def test_love_escalates_warning_then_longer_blocks(log, clock):
    periods = []
    for _ in range(6):
        turn = log.record("u", [LOVE])
        periods.append(turn.rows[0].period)
        clock.advance(1500 * DAY)  # past every block
    assert periods == [WARNING, HOUR, DAY, 14 * DAY, 1461 * DAY, 1461 * DAY]
    assert [row.level for row in log.rows("u")] == [1, 2, 3, 4, 5, 6]


def test_a_warning_does_not_block_and_says_so(log):
    turn = log.record("u", [LOVE])
    assert turn.is_warning and turn.blocked_until is None
    assert turn.message.startswith("⚠️ 경고") and "사랑 고백·만남 요청 1번째" in turn.message
    assert not log.block_status("u").blocked


def test_block_lasts_its_period_then_ends(log, clock):
    log.record("u", [INSULT])
    status = log.block_status("u")
    assert status.blocked and status.until == START + 7 * DAY and status.reasons == (INSULT,)
    assert "2025년 5월 8일 21:00까지" in status.message and "패드립" in status.message
    clock.advance(7 * DAY - timedelta(minutes=1))
    assert log.block_status("u").blocked
    clock.advance(timedelta(minutes=1))
    assert not log.block_status("u").blocked
    assert log.block_status("u").message == ""


def test_levels_are_per_reason_and_per_user(log):
    log.record("u", [POLITICS])
    log.record("u", [POLITICS])
    assert log.record("u", [LOVE]).rows[0].level == 1
    assert log.record("someone-else", [POLITICS]).rows[0].level == 1
    assert log.record("u", [POLITICS]).rows[0].level == 3


def test_every_reason_of_a_turn_is_kept_and_periods_add_up(log):
    log.record("u", [INSULT, POLITICS])                    # 7 days + warning
    turn = log.record("u", [INSULT, POLITICS, INSULT])     # 30 days + 3 days; a repeated reason is one row
    assert [(row.reason, row.level) for row in turn.rows] == [(INSULT, 2), (POLITICS, 2)]
    assert turn.blocked_until == START + 33 * DAY
    assert "33일 동안 차단" in turn.message
    assert len(log.rows("u")) == 4
    assert len({row.turn for row in log.rows("u")}) == 2


def test_summed_periods_are_capped(log):
    for _ in range(3):
        log.record("u", [INSULT])
    for _ in range(4):
        log.record("u", [POLITICS])
    turn = log.record("u", [INSULT, POLITICS])             # 1461 + 365 days → capped
    assert turn_block(turn.rows) == MAX_BLOCK
    assert log.block_status("u").until == START + MAX_BLOCK


def test_the_longest_running_block_is_reported(log, clock):
    log.record("u", [INSULT])                              # until START + 7 days
    clock.advance(DAY)
    log.record("u", [LOVE])
    log.record("u", [LOVE])                                # 1 hour, ends long before
    status = log.block_status("u")
    assert status.until == START + 7 * DAY and status.reasons == (INSULT,)


def test_block_survives_a_fresh_connection_with_a_moved_clock(tmp_path, clock):
    path = tmp_path / "s.sqlite"
    with SanctionLog(path, clock=clock) as first:
        first.record("u", [LOVE])
        first.record("u", [LOVE])                          # 1 hour
    clock.advance(30 * timedelta(minutes=1))
    with SanctionLog(path, clock=clock) as restarted:
        assert restarted.block_status("u").until == START + HOUR
        clock.advance(HOUR)
        assert not restarted.block_status("u").blocked
        assert restarted.record("u", [LOVE]).rows[0].level == 3


def test_block_survives_a_fresh_process(tmp_path, clock):
    path = tmp_path / "s.sqlite"
    with SanctionLog(path, clock=clock) as log:
        log.record("u", [INSULT, POLITICS])
    script = textwrap.dedent(f"""
        from datetime import datetime
        from ohlora_utils.sanctions import SanctionLog
        log = SanctionLog({str(path)!r})
        for moment in ("2025-05-02T12:00:00+09:00", "2025-05-09T12:00:00+09:00"):
            status = log.block_status("u", datetime.fromisoformat(moment))
            print(status.blocked, status.until, ",".join(status.reasons))
    """)
    lines = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines == ["True 2025-05-08 21:00:00+09:00 패드립,정치", "False None "]


def test_naive_and_aware_times_mix(log):
    log.record("u", [INSULT], now=datetime(2025, 5, 1, 12, 0))   # naive = local time
    assert log.block_status("u", now=datetime(2025, 5, 2, 12, 0)).blocked
    assert log.block_status("u", now=datetime(2025, 5, 2, 12, 0).astimezone(timezone.utc)).blocked


def test_locked_database_keeps_the_rows_and_writes_them_later(tmp_path, clock, monkeypatch):
    monkeypatch.setattr("ohlora_utils.storage.DB_TIMEOUT_S", 0.1)
    path = tmp_path / "s.sqlite"
    log = SanctionLog(path, clock=clock)
    log.record("u", [POLITICS])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")                      # another process writes; nobody else may even read
    turn = log.record("u", [POLITICS, INSULT])             # mid-turn: no exception
    assert not turn.saved and "locked" in turn.problem
    assert [(row.reason, row.level) for row in turn.rows] == [(POLITICS, 2), (INSULT, 1)]  # level from this session
    assert log.block_status("u").blocked                   # answered from the rows not yet saved
    assert (tmp_path / "s.sqlite.unsaved.jsonl").is_file()
    holder.execute("ROLLBACK")
    holder.close()
    assert log.block_status("u").until == START + 10 * DAY
    log.close()
    assert not (tmp_path / "s.sqlite.unsaved.jsonl").exists()
    with SanctionLog(path, clock=clock) as fresh:
        assert [(row.reason, row.level) for row in fresh.rows("u")] == [(POLITICS, 1), (POLITICS, 2), (INSULT, 1)]


def test_rows_unsaved_when_the_process_ends_are_written_by_the_next_one(tmp_path, clock, monkeypatch):
    monkeypatch.setattr("ohlora_utils.storage.DB_TIMEOUT_S", 0.1)
    path = tmp_path / "s.sqlite"
    log = SanctionLog(path, clock=clock)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    assert not log.record("u", [INSULT]).saved
    log.close()                                            # still locked: the row stays in the side file
    assert (tmp_path / "s.sqlite.unsaved.jsonl").is_file()
    holder.execute("ROLLBACK")
    holder.close()
    with SanctionLog(path, clock=clock) as next_process:
        assert [(row.reason, row.level) for row in next_process.rows("u")] == [(INSULT, 1)]
        assert next_process.unsaved_rows == ()
    with SanctionLog(path, clock=clock) as again:          # imported once, never twice
        assert len(again.rows("u")) == 1
    assert not (tmp_path / "s.sqlite.unsaved.jsonl").exists()


def test_a_line_cut_short_in_the_unsaved_file_does_not_lose_the_others(tmp_path, clock, monkeypatch):
    monkeypatch.setattr("ohlora_utils.storage.DB_TIMEOUT_S", 0.1)
    path = tmp_path / "s.sqlite"
    log = SanctionLog(path, clock=clock)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    log.record("u", [LOVE, POLITICS])
    with open(tmp_path / "s.sqlite.unsaved.jsonl", "a", encoding="utf-8") as side:
        side.write('{"user_id": "u", "turn": "x", "rea')   # a crash in the middle of an append
    holder.execute("ROLLBACK")
    holder.close()
    with SanctionLog(path, clock=clock) as fresh:
        assert [row.reason for row in fresh.rows("u")] == [LOVE, POLITICS]


def test_replay_warns_then_blocks_and_the_block_outlives_a_restart(tmp_path):
    minute = timedelta(minutes=1)
    script = [(0 * minute, ("사랑해", [LOVE])), (5 * minute, ("만나자", [LOVE])), (10 * minute, RESTART),
              (15 * minute, ("풀렸어?", [])), (2 * HOUR, ("안녕", []))]
    lines = replay(tmp_path / "s.sqlite", "u", START, script)
    text = "\n".join(lines)
    assert lines[0] == "05-01 21:00  사용자: 사랑해" and "⚠️ 경고: 사랑 고백·만남 요청 1번째." in text
    assert "🚫 대화가 1시간 동안 차단됐어요" in text
    after_restart = text.split("재시작")[1]
    assert "지금은 오로라와 대화할 수 없어요. 2025년 5월 1일 22:05까지" in after_restart
    assert lines[-1].strip() == "(통과: 오로라가 답합니다)"
    with SanctionLog(tmp_path / "s.sqlite") as log:
        assert [row.level for row in log.rows("u")] == [1, 2]    # the refused message left no row


def test_a_damaged_file_is_a_clear_error_at_start_and_left_alone(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"definitely not sqlite " * 200)
    with pytest.raises(OhloraError, match="not a usable SQLite database.*move the damaged file aside"):
        SanctionLog(path)
    assert path.read_bytes() == b"definitely not sqlite " * 200


def test_a_file_damaged_mid_session_never_raises_mid_turn_and_loses_no_new_row(tmp_path, clock):
    path = tmp_path / "s.sqlite"
    log = SanctionLog(path, clock=clock)
    log.record("u", [LOVE])
    path.write_bytes(b"\x00garbage" * 4096)                # the file is destroyed under the open connection
    turn = log.record("u", [LOVE, INSULT])                 # mid-turn: no exception
    assert not turn.saved and "not a usable SQLite database" in turn.problem
    assert [(row.reason, row.level) for row in turn.rows] == [(LOVE, 2), (INSULT, 1)]
    assert turn.message.startswith("🚫")
    status = log.block_status("u")
    assert status.blocked and "could not be read" in status.problem
    log.close()
    path.rename(tmp_path / "s.sqlite.damaged")             # what the error message tells the user to do
    with SanctionLog(path, clock=clock) as fresh:          # the new database takes the unsaved rows
        assert [(row.reason, row.level) for row in fresh.rows("u")] == [(LOVE, 2), (INSULT, 1)]
        assert fresh.block_status("u").until == START + 7 * DAY + HOUR


# --- lifting a mistaken block ---------------------------------------------------------------------------

def test_a_lift_ends_a_block_at_once_and_the_history_keeps_both(tmp_path):
    from ohlora_utils.sanctions import SanctionLog

    now = datetime(2026, 11, 21, 14, 0, tzinfo=KST)
    with SanctionLog(tmp_path / "s.sqlite", clock=lambda: now) as log:
        log.record("u", [INSULT])                                   # 7 days on a first offence
        assert log.block_status("u").blocked
        lift = log.lift("u", "아니 was misread as 패드립")
        assert lift.rows_lifted == 1 and not log.block_status("u").blocked
        assert [row.reason for row in log.rows("u")] == [INSULT]      # nothing deleted
        assert [item.why for item in log.lifts("u")] == ["아니 was misread as 패드립"]


def test_after_a_lift_escalation_starts_again_at_level_one(tmp_path):
    from ohlora_utils.sanctions import SanctionLog

    clock = [datetime(2026, 11, 21, 14, 0, tzinfo=KST)]
    with SanctionLog(tmp_path / "s.sqlite", clock=lambda: clock[0]) as log:
        log.record("u", [POLITICS])
        log.record("u", [POLITICS])                                  # level 2: 3 days
        log.lift("u", "mistaken")
        clock[0] += timedelta(minutes=1)
        again = log.record("u", [POLITICS])
        assert again.rows[0].level == 1 and again.is_warning
        assert [row.level for row in log.rows("u")] == [1, 2, 1]


def test_a_lift_needs_a_reason_and_a_sanction(tmp_path):
    from ohlora_utils.sanctions import SanctionLog

    with SanctionLog(tmp_path / "s.sqlite") as log:
        with pytest.raises(OhloraError, match="no sanction to lift"):
            log.lift("nobody", "why not")
        log.record("u", [POLITICS])
        with pytest.raises(OhloraError, match="needs a reason"):
            log.lift("u", "  ")
        assert log.lifts() == []


def test_the_command_lifts_and_shows_the_history(tmp_path, capsys):
    from ohlora_utils.sanctions import SanctionLog, main

    path = tmp_path / "s.sqlite"
    with SanctionLog(path) as log:
        log.record("u", [INSULT])
    main(["--database", str(path), "lift", "--user", "u", "--why", "false positive on 😂"])
    shown = capsys.readouterr().out
    assert "lifted 1 sanction row(s) of u" in shown and "패드립" in shown and "u is not blocked" in shown
    with pytest.raises(SystemExit):
        main(["--database", str(path), "lift", "--user", "u", "--why", "again"])   # nothing left to lift
    assert "no sanction to lift" in capsys.readouterr().err
