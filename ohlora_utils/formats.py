"""The literal text formats the data, the models and the chat share.

Usage: ``parse_memory_item("[좋아하는 음식: 떡볶이]")`` → ``("좋아하는 음식", "떡볶이")``;
``parse_expression("(눈 크게, 입 보통, 고개 돌림 없음)")`` → ``("크게", "보통", "없음")``;
``split_context("[취미: 등산] 주말에 뭐 하지")`` → ``InputParts(memory="[취미: 등산]", user_text="주말에 뭐 하지", …)``
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .tasks import QUESTION_PREFIX, SUMMARY_PREFIX

EYES_LABELS = ("작게", "보통", "크게", "아주 크게")   # data/README.md
MOUTH_LABELS = ("보통", "크게", "아주 크게")
POSE_LABELS = ("없음", "보통", "많이")
MEMORY_ITEM = re.compile(r"\[([^\[\]:]+?): ([^\[\]]+?)\]")   # one "[key: value]"
EXPRESSION = re.compile(r"\(눈 (.+?), 입 (.+?), 고개 돌림 (.+?)\)")
TIME_INFO = re.compile(r"\(지금은 ([월화수목금토일]요일) (오전|오후|저녁)\) ")
SUMMARY_CONTEXT = re.compile(re.escape(SUMMARY_PREFIX) + r" (.+?) " + re.escape(QUESTION_PREFIX) + " ")
MEMORY_CONTEXT = re.compile(MEMORY_ITEM.pattern + " ")


def has_visible_characters(text: str) -> bool:
    """True when ``text`` holds a character one can see: not only spaces, zero-width or control characters."""
    return any(unicodedata.category(ch)[0] not in "CZ" for ch in text)


def parse_memory_item(text: str) -> tuple[str, str] | None:
    """``(key, value)`` when ``text`` is exactly one ``[key: value]``, else None."""
    match = MEMORY_ITEM.fullmatch(text.strip())
    if not match or not match.group(1).strip() or not match.group(2).strip():
        return None
    return match.group(1).strip(), match.group(2).strip()


def format_memory_item(key: str, value: str) -> str:
    return f"[{key.strip()}: {value.strip()}]"


def format_expression(eyes: str, mouth: str, pose: str) -> str:
    return f"(눈 {eyes}, 입 {mouth}, 고개 돌림 {pose})"


def parse_expression(text: str) -> tuple[str, str, str] | None:
    """``(eyes, mouth, pose)`` when ``text`` is exactly one well-formed expression with allowed labels."""
    match = EXPRESSION.fullmatch(text.strip())
    if not match:
        return None
    eyes, mouth, pose = match.groups()
    if eyes in EYES_LABELS and mouth in MOUTH_LABELS and pose in POSE_LABELS:
        return eyes, mouth, pose
    return None


@dataclass(frozen=True)
class InputParts:
    """An LLM input split into its context prefixes and the user's own text."""
    memory: str | None       # a retrieved "[key: value]" in front
    summary: str | None      # the previous turn's summary
    time_info: str | None    # "(지금은 X요일 Y) " (weekday, part) as text
    user_text: str


def split_context(input_data: str) -> InputParts:
    rest, memory, summary, time_info = input_data, None, None, None
    if match := MEMORY_CONTEXT.match(rest):
        memory, rest = match.group(0).strip(), rest[match.end():]
    if match := SUMMARY_CONTEXT.match(rest):
        summary, rest = match.group(1), rest[match.end():]
        if memory is None and (match := MEMORY_CONTEXT.match(rest)):  # memory after the summary
            memory, rest = match.group(0).strip(), rest[match.end():]
    if match := TIME_INFO.match(rest):
        time_info, rest = match.group(0), rest[match.end():]
    return InputParts(memory, summary, time_info, rest)
