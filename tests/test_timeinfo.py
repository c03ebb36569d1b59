"""add_time_info: prompts with a time word get "(지금은 X요일 Y) " in front (docs/time_info.md)."""
import datetime

import pytest

from ohlora_utils.timeinfo import TRIGGER_WORDS, add_time_info, day_and_part

# 2026-11-21 is a Saturday; 2026-11-20 a Friday; 2026-11-23 a Monday.
SATURDAY, FRIDAY, MONDAY, SUNDAY = (datetime.date(2026, 11, d) for d in (21, 20, 23, 22))


def at(day: datetime.date, hour: int, minute: int = 0) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, minute))


def test_design_example():
    text = "로라야 오늘 약속 없는데 뭐하지"
    assert add_time_info(text, at(SATURDAY, 14)) == "(지금은 토요일 오후) 로라야 오늘 약속 없는데 뭐하지"


@pytest.mark.parametrize("word", TRIGGER_WORDS)
def test_every_trigger_word_adds_the_prefix_anywhere_in_the_text(word):
    assert add_time_info(f"음 {word}는 좀", at(MONDAY, 9)) == f"(지금은 월요일 오전) 음 {word}는 좀"


def test_text_without_a_trigger_word_is_unchanged():
    text = "로라야 떡볶이 좋아해?"
    assert add_time_info(text, at(MONDAY, 9)) is text


@pytest.mark.parametrize(
    "day, hour, minute, expected",
    [
        (MONDAY, 4, 0, ("월요일", "오전")),      # 오전 starts at 04:00
        (MONDAY, 11, 59, ("월요일", "오전")),
        (MONDAY, 12, 0, ("월요일", "오후")),     # 오후 starts at 12:00
        (MONDAY, 17, 59, ("월요일", "오후")),
        (MONDAY, 18, 0, ("월요일", "저녁")),     # 저녁 starts at 18:00 ...
        (MONDAY, 23, 59, ("월요일", "저녁")),
        (FRIDAY, 16, 59, ("금요일", "오후")),    # ... but on Friday at 17:00
        (FRIDAY, 17, 0, ("금요일", "저녁")),
        (FRIDAY, 17, 59, ("금요일", "저녁")),
        (SATURDAY, 17, 0, ("토요일", "오후")),   # the exception is Friday's alone
        (SATURDAY, 0, 0, ("금요일", "저녁")),    # after midnight still belongs to the previous day
        (SATURDAY, 3, 59, ("금요일", "저녁")),
        (SATURDAY, 4, 0, ("토요일", "오전")),
        (MONDAY, 2, 30, ("일요일", "저녁")),     # ... across the week boundary too
        (SUNDAY, 12, 0, ("일요일", "오후")),
    ],
)
def test_band_edges(day, hour, minute, expected):
    assert day_and_part(at(day, hour, minute)) == expected
    weekday, part = expected
    assert add_time_info("지금 뭐해?", at(day, hour, minute)) == f"(지금은 {weekday} {part}) 지금 뭐해?"


def test_every_minute_of_a_week_gets_exactly_one_band():
    start = at(MONDAY, 0)
    seen = set()
    for minute in range(7 * 24 * 60):
        weekday, part = day_and_part(start + datetime.timedelta(minutes=minute))
        assert part in ("오전", "오후", "저녁")
        seen.add((weekday, part))
    assert len(seen) == 21


def test_the_conversations_day_turns_at_four_in_the_morning_for_time_info_and_memory_alike():
    from ohlora_utils.timeinfo import chat_day

    monday = datetime.datetime(2026, 11, 23)
    assert chat_day(monday.replace(hour=23, minute=59)) == monday.date()
    assert chat_day(monday + datetime.timedelta(days=1, hours=3, minutes=59)) == monday.date()
    assert chat_day(monday + datetime.timedelta(days=1, hours=4)) == monday.date() + datetime.timedelta(days=1)
