"""The four fine-tuned tasks: their prompt/completion text layout and end markers (DESIGN.md §4).

Usage: ``TASKS["summary"].prompt(row)`` → ``"... (요약 시작) ### 답변:"``; ``TASKS["summary"].completion(row)``

The markers are literal Korean text the model learns; each task's completion ends with its end
marker, which is where generation stops. This module is the one source of truth for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

ANSWER_HEADER = "### 답변:"  # every prompt ends with this; the completion follows after a space


@dataclass(frozen=True)
class TaskSpec:
    name: str               # column of the fine-tuning CSV this task learns to write
    start_marker: str       # closes the prompt, right before ANSWER_HEADER
    end_marker: str         # closes the completion; generation stops here
    prompt_template: str    # str.format template over the row's columns

    def prompt(self, row: Mapping[str, str]) -> str:
        return self.prompt_template.format(**row) + f" {self.start_marker} {ANSWER_HEADER}"

    def completion(self, row: Mapping[str, str]) -> str:
        return f" {row[self.name]} {self.end_marker}"


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("output_message", "(답변 시작)", "(답변 종료)", "{input_data}"),
        TaskSpec("summary", "(요약 시작)", "(요약 종료)", "{input_data} (오로라 답변) {output_message}"),
        TaskSpec("memory", "(요약 시작)", "(요약 종료)", "{input_data}"),
        TaskSpec("eyes_mouth_pose", "(표정 출력 시작)", "(표정 출력 종료)", "{output_message}"),
    )
}
TASK_NAMES = tuple(TASKS)

# Context prefixes the chat puts in front of a user turn (DESIGN.md §3, §9).
SUMMARY_PREFIX = "(오로라 답변 요약)"
QUESTION_PREFIX = "(사용자 질문)"
SUMMARY_ANSWER_MARKER = "(오로라 답변)"


def all_markers() -> list[str]:
    """Every literal marker the study's texts use (the tiny tokenizer must be able to spell them)."""
    markers = {ANSWER_HEADER, SUMMARY_PREFIX, QUESTION_PREFIX, SUMMARY_ANSWER_MARKER}
    for spec in TASKS.values():
        markers.update((spec.start_marker, spec.end_marker))
    return sorted(markers)
