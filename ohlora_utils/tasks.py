"""The four fine-tuned tasks: their prompt/completion text layout and end markers (docs/fine_tuning.md).

Usage: ``TASKS["summary"].prompt(row)`` → ``"... (요약 시작) ### 답변:"``; ``TASKS["summary"].completion(row)``

Each spec also carries the original's inference settings (temperature, fallback) and epochs.

The markers are literal Korean text the model learns; each task's completion ends with its end
marker, which is where generation stops. This module is the one source of truth for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .decoding import DEFAULT_DECODING, Decoding

ANSWER_HEADER = "### 답변:"  # every prompt ends with this; the completion follows after a space
# the keys a memory item may have: those of the fine-tuning and memory data (data/README.md; data.py checks
# every row against them; ``TaskSpec.keys`` of the memory task).
MEMORY_KEYS = ("상태", "건강", "직업", "전공", "학교", "목표", "취미", "좋아하는 음식", "싫어하는 음식", "좋아하는 것",
               "싫어하는 것", "좋아하는 가수", "반려동물", "가족", "친구", "연인", "사는 곳", "고향", "오늘 일정",
               "내일 일정", "주말 계획", "여행 계획", "오늘 날씨", "오로라에 대한 감정")


@dataclass(frozen=True)
class TaskSpec:
    name: str               # column of the fine-tuning CSV this task learns to write
    start_marker: str       # closes the prompt, right before ANSWER_HEADER
    end_marker: str         # closes the completion; generation stops here
    prompt_template: str    # str.format template over the row's columns
    temperature: float      # sampling temperature of the first try (original: 0.6, expression 1.0)
    max_new_tokens: int     # generation budget; an answer that has not ended by then is invalid
    fallback: str | None    # what the original answered after five failed tries (None: no answer)
    original_epochs: int    # the original's epochs for this task (docs/fine_tuning.md)
    decoding: Decoding = DEFAULT_DECODING   # top-k / top-p / min-p / repetition penalty after the temperature
    # a task whose empty answer means something ("no memory"): answer only when the adapter's probability of the
    # empty answer is below this gate; the answer it then samples is forced to begin with ``opening``
    empty_gate: float | None = None
    opening: str = ""
    # a closed set of words that may follow the opening ("[" + key + ":"): with ``choose_keys=True`` the likeliest
    # is forced before the rest is sampled (``generation.empty_gate``; tried, not the chat's default)
    keys: tuple[str, ...] = ()

    def prompt(self, row: Mapping[str, str]) -> str:
        return self.prompt_template.format(**row) + f" {self.start_marker} {ANSWER_HEADER}"

    def completion(self, row: Mapping[str, str]) -> str:
        answer = str(row[self.name]).strip()
        return f" {answer} {self.end_marker}" if answer else f" {self.end_marker}"  # "no memory" is just the marker


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        # the reply drops tokens under a tenth of the most likely one's probability: the decoding study's pick
        # (blind grade, docs/fine_tuning.md); the other tasks sample as the original did
        TaskSpec("output_message", "(답변 시작)", "(답변 종료)", "{input_data}", 0.6, 64, "(읽씹)", 5,
                 decoding=Decoding(min_p=0.1)),
        TaskSpec("summary", "(요약 시작)", "(요약 종료)", "{input_data} (오로라 답변) {output_message}", 0.6, 48, None, 10),
        # save or not is decided greedily (the likelier of "no memory" and "a memory"), then the memory is
        # sampled: sampling the decision too (the original) saved fewer memories, and fewer of them were due
        # (docs/fine_tuning.md, benchmarks/memory_gate.py); "[" opens a "[key: value]" item (formats.MEMORY_ITEM)
        TaskSpec("memory", "(요약 시작)", "(요약 종료)", "{input_data}", 0.6, 32, None, 20, empty_gate=0.5, opening="[",
                 keys=MEMORY_KEYS),
        TaskSpec("eyes_mouth_pose", "(표정 출력 시작)", "(표정 출력 종료)", "{output_message}", 1.0, 32,
                 "(눈 보통, 입 보통, 고개 돌림 없음)", 30),
    )
}
TASK_NAMES = tuple(TASKS)

# Context prefixes the chat puts in front of a user turn (data/README.md, docs/chat_turn.md).
SUMMARY_PREFIX = "(오로라 답변 요약)"
QUESTION_PREFIX = "(사용자 질문)"
SUMMARY_ANSWER_MARKER = "(오로라 답변)"


def all_markers() -> list[str]:
    """Every literal marker the study's texts use (the tiny tokenizer must be able to spell them)."""
    markers = {ANSWER_HEADER, SUMMARY_PREFIX, QUESTION_PREFIX, SUMMARY_ANSWER_MARKER}
    for spec in TASKS.values():
        markers.update((spec.start_marker, spec.end_marker))
    return sorted(markers)
