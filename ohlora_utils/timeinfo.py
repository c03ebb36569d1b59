"""Time info: prompts that talk about time get the current weekday and part of day in front.

Usage: ``add_time_info("로라야 오늘 약속 없는데 뭐하지", now)`` → ``"(지금은 토요일 오후) 로라야 오늘 약속 없는데 뭐하지"``

The rule (DESIGN.md §7): a prompt containing any trigger word gets ``(지금은 X요일 Y) `` in front.
Y is 오전 from 04:00 to 11:59, 오후 from 12:00 to 17:59 (on Fridays only until 16:59: the weekend
evening starts early), and 저녁 otherwise. 00:00–03:59 still belongs to the previous day's 저녁.
"""
from __future__ import annotations

import datetime

TRIGGER_WORDS = ("오늘", "내일", "지금", "요일", "이따", "휴일")  # any of these anywhere adds time info
WEEKDAYS_KO = ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일")  # datetime.weekday() order
MORNING_START_HOUR = 4      # 04:00 starts 오전; earlier hours are the previous day's 저녁
AFTERNOON_START_HOUR = 12   # 12:00 starts 오후
EVENING_START_HOUR = 18     # 18:00 starts 저녁 ...
FRIDAY_EVENING_START_HOUR = 17  # ... except on Friday, from 17:00
FRIDAY = 4


def has_time_word(text: str) -> bool:
    return any(word in text for word in TRIGGER_WORDS)


def day_and_part(now: datetime.datetime) -> tuple[str, str]:
    """The (weekday, part of day) the prefix names, e.g. ``("토요일", "오후")``."""
    if now.hour < MORNING_START_HOUR:
        previous_day = now - datetime.timedelta(days=1)
        return WEEKDAYS_KO[previous_day.weekday()], "저녁"
    evening_start = FRIDAY_EVENING_START_HOUR if now.weekday() == FRIDAY else EVENING_START_HOUR
    if now.hour < AFTERNOON_START_HOUR:
        part = "오전"
    elif now.hour < evening_start:
        part = "오후"
    else:
        part = "저녁"
    return WEEKDAYS_KO[now.weekday()], part


def time_info_prefix(now: datetime.datetime) -> str:
    weekday, part = day_and_part(now)
    return f"(지금은 {weekday} {part}) "


def add_time_info(text: str, now: datetime.datetime) -> str:
    """Return ``text`` with ``(지금은 X요일 Y) `` in front when it contains a trigger word, else unchanged."""
    if not has_time_word(text):
        return text
    return time_info_prefix(now) + text
