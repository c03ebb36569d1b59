"""Time info: prompts that talk about time get the current weekday and part of day in front.

Usage: ``add_time_info("로라야 오늘 약속 없는데 뭐하지", now)`` → ``"(지금은 토요일 오후) 로라야 오늘 약속 없는데 뭐하지"``

The rule (docs/time_info.md): a prompt containing any trigger word gets ``(지금은 X요일 Y) `` in front.
Y is 오전 from 04:00 to 11:59, 오후 from 12:00 to 17:59 (on Fridays only until 16:59: the weekend
evening starts early), and 저녁 otherwise. 00:00–03:59 still belongs to the previous day's 저녁.
"""
from __future__ import annotations

import datetime
import re

TRIGGER_WORDS = ("오늘", "내일", "지금", "요일", "이따", "휴일")  # any of these anywhere adds time info
WEEKDAYS_KO = ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일")  # datetime.weekday() order
MORNING_START_HOUR = 4      # 04:00 starts 오전; earlier hours are the previous day's 저녁
AFTERNOON_START_HOUR = 12   # 12:00 starts 오후
EVENING_START_HOUR = 18     # 18:00 starts 저녁 ...
FRIDAY_EVENING_START_HOUR = 17  # ... except on Friday, from 17:00
FRIDAY = 4


def has_time_word(text: str) -> bool:
    return any(word in text for word in TRIGGER_WORDS)


def chat_day(now: datetime.datetime) -> datetime.date:
    """The day a moment belongs to in conversation: 00:00–03:59 is still the previous day (its 저녁).

    The one day boundary of the study: time info names this day, and the memory store moves 오늘 / 내일
    keys with it, so "내일" said at 01:00 means the same day to both.
    """
    return (now - datetime.timedelta(hours=MORNING_START_HOUR)).date()


def day_and_part(now: datetime.datetime) -> tuple[str, str]:
    """The (weekday, part of day) the prefix names, e.g. ``("토요일", "오후")``."""
    if now.hour < MORNING_START_HOUR:
        return WEEKDAYS_KO[chat_day(now).weekday()], "저녁"
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


_WEEKDAY_MENTION_PATTERN = "|".join(WEEKDAYS_KO)
_RELATIVE_DAY_OFFSETS = {"그저께": -2, "그제": -2, "어제": -1, "내일": 1, "모레": 2}  # word before a weekday


def wrong_weekday_mentions(reply: str, today: str) -> list[str]:
    """Weekdays named in ``reply`` that contradict ``today`` (e.g. "금요일" when today is 토요일).

    A weekday right after 내일/모레/어제/그제 is checked against that day instead; a weekday after
    "다음 주"/"지난 주"/"매주" is not about this week and is never wrong.
    """
    today_index = WEEKDAYS_KO.index(today)
    wrong = []
    for match in re.finditer(_WEEKDAY_MENTION_PATTERN, reply):
        before = reply[max(0, match.start() - 6):match.start()].replace(" ", "")
        if any(word in before for word in ("다음주", "지난주", "저번주", "매주", "주말")):
            continue
        offset = next((o for word, o in _RELATIVE_DAY_OFFSETS.items() if before.endswith(word)), 0)
        if WEEKDAYS_KO.index(match.group(0)) != (today_index + offset) % 7:
            wrong.append(match.group(0))
    return wrong
