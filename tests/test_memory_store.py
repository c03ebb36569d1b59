"""The memory store: the original's add/skip rule, the two policies past it, the text format, bad files."""
import sqlite3
import threading
from datetime import datetime

import pytest

from ohlora_utils.errors import OhloraError
from ohlora_utils.memory_store import ManualClock, MemoryStore, key_on
from ohlora_utils.timeinfo import add_time_info

MONDAY_NOON = datetime(2025, 6, 2, 12, 0)


@pytest.fixture
def clock():
    return ManualClock(MONDAY_NOON)


def store_at(tmp_path, clock, **policies):
    return MemoryStore(tmp_path / "memory.sqlite", user="minsu", clock=clock, **policies)


def original(tmp_path, clock):
    return store_at(tmp_path, clock, replace_same_key=False, follow_calendar=False)


class FakeRetriever:
    """Records which items retrieval is offered and returns the first one."""

    def best(self, query, items, threshold=None):
        self.offered = list(items)
        return (items[0], 1.0) if items else (None, 0.0)


# --- the original's behaviour -----------------------------------------------------------------------

def test_an_item_equal_to_a_stored_one_ignoring_spaces_is_not_added(tmp_path, clock):
    store = original(tmp_path, clock)
    assert store.add("[좋아하는 음식: 떡볶이]").status == "added"
    assert store.add("[좋아하는음식:  떡 볶이]").status == "duplicate"
    assert store.items() == ["[좋아하는 음식: 떡볶이]"]


def test_with_both_policies_off_contradictions_pile_up_and_days_never_change(tmp_path, clock):
    store = original(tmp_path, clock)
    for item in ("[오늘 일정: 치과]", "[오늘 일정: 회의]", "[내일 일정: 면접]"):
        store.add(item)
    clock.advance(days=3)
    assert store.items() == ["[오늘 일정: 치과]", "[오늘 일정: 회의]", "[내일 일정: 면접]"]


def test_every_row_carries_user_and_time_and_users_are_kept_apart(tmp_path, clock):
    minsu = store_at(tmp_path, clock)
    minsu.add("[취미: 등산]")
    clock.advance(hours=1)
    jiwoo = MemoryStore(tmp_path / "memory.sqlite", user="jiwoo", clock=clock)
    jiwoo.add("[취미: 뜨개질]")
    assert minsu.items() == ["[취미: 등산]"] and jiwoo.items() == ["[취미: 뜨개질]"]
    (row,) = minsu.rows()
    assert (row.user, row.key, row.value, row.created_at) == ("minsu", "취미", "등산", MONDAY_NOON)


def test_a_malformed_item_or_blank_user_is_refused_and_nothing_is_stored(tmp_path, clock):
    store = store_at(tmp_path, clock)
    for bad in ("떡볶이 좋아해", "[취미 등산]", "[취미: ]", "[a: b] [c: d]", "", None):
        with pytest.raises(OhloraError, match="not one \\[key: value\\]"):
            store.add(bad)
    assert store.rows(include_past=True) == []
    with pytest.raises(OhloraError, match="user id is empty"):
        MemoryStore(tmp_path / "memory.sqlite", user="  ")


def test_an_empty_store_lists_nothing_and_retrieves_nothing(tmp_path, clock):
    store = store_at(tmp_path, clock)
    assert store.items() == [] and len(store) == 0
    assert store.retrieve("내일 뭐 하지?", FakeRetriever()) == (None, 0.0)
    assert store.delete("[취미: 등산]") == 0
    assert store.export_text(tmp_path / "out.txt") == 0
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == ""


# --- policy 1: a new value for the same key replaces the old one --------------------------------------

def test_a_new_value_for_the_same_key_replaces_the_old_one(tmp_path, clock):
    store = store_at(tmp_path, clock)
    store.add("[오늘 일정: 치과]")
    store.add("[좋아하는 음식: 떡볶이]")
    result = store.add("[오늘 일정: 팀 회의]")
    assert result.status == "replaced" and result.replaced == ("[오늘 일정: 치과]",)
    assert store.items() == ["[좋아하는 음식: 떡볶이]", "[오늘 일정: 팀 회의]"]


def test_keys_that_differ_only_in_spaces_are_the_same_key(tmp_path, clock):
    store = store_at(tmp_path, clock)
    store.add("[좋아하는 음식: 떡볶이]")
    assert store.add("[좋아하는음식: 마라탕]").replaced == ("[좋아하는 음식: 떡볶이]",)
    assert len(store) == 1


# --- policy 2: day-relative keys follow the calendar --------------------------------------------------

def test_key_on_moves_day_words_and_drops_past_days():
    monday, tuesday, wednesday = (datetime(2025, 6, d).date() for d in (2, 3, 4))
    assert key_on("내일 일정", monday, tuesday) == "오늘 일정"
    assert key_on("모레 일정", monday, tuesday) == "내일 일정"
    assert key_on("내일 일정", monday, wednesday) is None
    assert key_on("오늘 날씨", monday, tuesday) is None
    assert key_on("오늘 날씨", monday, monday) == "오늘 날씨"
    assert key_on("좋아하는 음식", monday, wednesday) == "좋아하는 음식"
    assert key_on("오늘의 기분", monday, wednesday) == "오늘의 기분"  # not a day word followed by a key


def test_tomorrows_plan_saved_yesterday_is_todays_plan(tmp_path, clock):
    store = store_at(tmp_path, clock)
    store.add("[내일 일정: 치과 예약]")
    clock.advance(hours=13)  # Tuesday 01:00: still Monday's evening to time info, so still tomorrow's plan
    assert store.items() == ["[내일 일정: 치과 예약]"]
    assert add_time_info("내일 뭐 있더라", clock()).startswith("(지금은 월요일 저녁)")
    clock.advance(hours=3)   # Tuesday 04:00: the conversation's day has turned
    assert store.items() == ["[오늘 일정: 치과 예약]"]
    clock.advance(days=1)
    assert store.items() == []


def test_todays_weather_saved_late_in_the_evening_lasts_until_four_in_the_morning(tmp_path, clock):
    store = store_at(tmp_path, clock)   # Monday 12:00
    clock.advance(hours=11)
    store.add("[오늘 날씨: 비]")         # Monday 23:00
    clock.advance(hours=3)               # Tuesday 02:00: time info still says 월요일 저녁
    assert store.items() == ["[오늘 날씨: 비]"]
    clock.advance(hours=2)               # Tuesday 04:00
    assert store.items() == []


def test_yesterdays_today_items_are_no_longer_retrieved_but_kept(tmp_path, clock):
    store = store_at(tmp_path, clock)
    store.add("[오늘 일정: 회의]")
    store.add("[오늘 날씨: 비]")
    store.add("[취미: 등산]")
    clock.advance(days=1)
    assert store.items() == ["[취미: 등산]"]
    retriever = FakeRetriever()
    store.retrieve("오늘 날씨 어때?", retriever)
    assert retriever.offered == ["[취미: 등산]"]
    assert [row.item for row in store.rows(include_past=True)] == ["[오늘 일정: 회의]", "[오늘 날씨: 비]", "[취미: 등산]"]


def test_todays_new_plan_replaces_yesterdays_tomorrow_plan(tmp_path, clock):
    store = store_at(tmp_path, clock)
    store.add("[내일 일정: 치과]")
    clock.advance(days=1)
    assert store.add("[오늘 일정: 팀 회의]").replaced == ("[오늘 일정: 치과]",)
    assert store.items() == ["[오늘 일정: 팀 회의]"]


def test_a_past_item_does_not_block_the_same_item_on_a_new_day(tmp_path, clock):
    store = store_at(tmp_path, clock)
    store.add("[오늘 날씨: 비]")
    clock.advance(days=1)
    assert store.add("[오늘 날씨: 비]").status == "added"
    assert store.items() == ["[오늘 날씨: 비]"]


# --- delete, import, export ------------------------------------------------------------------------

def test_delete_removes_the_item_ignoring_spaces(tmp_path, clock):
    store = store_at(tmp_path, clock)
    store.add("[취미: 등산]")
    store.add("[반려동물: 고양이]")
    assert store.delete("[취미:  등 산]") == 1
    assert store.items() == ["[반려동물: 고양이]"]
    assert store.clear() == 1 and store.items() == []


def test_export_then_import_round_trips_the_one_item_per_line_format(tmp_path, clock):
    store = store_at(tmp_path, clock)
    for item in ("[취미: 등산]", "[오늘 일정: 치과]"):
        store.add(item)
    assert store.export_text(tmp_path / "memory.txt") == 2
    assert (tmp_path / "memory.txt").read_text(encoding="utf-8") == "[취미: 등산]\n[오늘 일정: 치과]\n"
    other = MemoryStore(tmp_path / "other.sqlite", clock=clock)
    results = other.import_text(tmp_path / "memory.txt")
    assert [r.status for r in results] == ["added", "added"] and other.items() == store.items()


def test_import_skips_blank_lines_and_applies_the_add_rules(tmp_path, clock):
    (tmp_path / "memory.txt").write_text("\n[오늘 일정: 생산성 높음]\n\n[오늘 일정: 생산성높음]\n[오늘 일정: 쉬기]\n",
                                         encoding="utf-8")
    store = store_at(tmp_path, clock)
    assert [r.status for r in store.import_text(tmp_path / "memory.txt")] == ["added", "duplicate", "replaced"]
    assert store.items() == ["[오늘 일정: 쉬기]"]


def test_a_malformed_line_imports_nothing_and_names_the_line(tmp_path, clock):
    (tmp_path / "memory.txt").write_text("[취미: 등산]\n등산 좋아함\n", encoding="utf-8")
    store = store_at(tmp_path, clock)
    with pytest.raises(OhloraError, match="line 2: '등산 좋아함'.*nothing was imported"):
        store.import_text(tmp_path / "memory.txt")
    assert store.items() == []
    with pytest.raises(OhloraError, match="cannot read"):
        store.import_text(tmp_path / "missing.txt")


# --- bad files and concurrency -----------------------------------------------------------------------

def test_not_a_database_is_a_clear_error_and_the_file_is_kept(tmp_path, clock):
    path = tmp_path / "memory.sqlite"
    path.write_bytes("[취미: 등산]\n".encode() * 200)
    with pytest.raises(OhloraError, match="not a usable SQLite database"):
        MemoryStore(path, clock=clock)
    assert path.read_bytes() == "[취미: 등산]\n".encode() * 200


def test_a_locked_database_is_a_clear_error_and_loses_nothing(tmp_path, clock, monkeypatch):
    monkeypatch.setattr("ohlora_utils.storage.DB_TIMEOUT_S", 0.1)
    store = store_at(tmp_path, clock)
    store.add("[취미: 등산]")
    holder = sqlite3.connect(tmp_path / "memory.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another chat is in the middle of a write
    with pytest.raises(OhloraError, match="locked by another process"):
        store.add("[반려동물: 고양이]")
    assert store.items() == ["[취미: 등산]"]  # reading still works
    holder.execute("ROLLBACK")
    assert store.add("[반려동물: 고양이]").status == "added"
    assert store.items() == ["[취미: 등산]", "[반려동물: 고양이]"]


def test_a_read_only_database_is_a_clear_error_and_can_still_be_read(tmp_path, clock, monkeypatch):
    store_at(tmp_path, clock).add("[취미: 등산]")
    real_connect = sqlite3.connect

    def read_only_connect(path, **options):  # what the OS gives for a file without write permission
        return real_connect(f"file:{path}?mode=ro", uri=True, **options)

    monkeypatch.setattr(sqlite3, "connect", read_only_connect)
    store = store_at(tmp_path, clock)
    assert store.items() == ["[취미: 등산]"]
    with pytest.raises(OhloraError, match="read-only"):
        store.add("[반려동물: 고양이]")
    monkeypatch.undo()
    assert store_at(tmp_path, clock).items() == ["[취미: 등산]"]


@pytest.mark.parametrize("replace_same_key", [False, True])
def test_two_writers_at_once_lose_and_duplicate_nothing(tmp_path, clock, replace_same_key):
    store_at(tmp_path, clock).close()
    shared = [f"[취미: 취미{i}]" for i in range(10)]          # both writers add these
    own = {name: [f"[{name} 메모 {i}: 값{i}]" for i in range(15)] for name in ("a", "b")}
    errors = []

    def writer(name):
        try:
            with store_at(tmp_path, clock, replace_same_key=replace_same_key) as store:
                for item in own[name] + shared:
                    store.add(item)
        except Exception as error:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(name,)) for name in own]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    items = store_at(tmp_path, clock).items()
    expected_shared = shared[-1:] if replace_same_key else shared  # one key 취미: the last value wins
    assert sorted(items) == sorted(own["a"] + own["b"] + expected_shared)
