"""How the next token is drawn: repetition penalty, temperature, top-k, top-p and min-p (docs/fine_tuning.md).

Usage::

    values, columns = candidates(logits_row, temperature=0.6, decoding=Decoding(min_p=0.1), previous=seen)
    column = columns[torch.multinomial(torch.softmax(values, -1), 1)]

One function serves both generation paths (the merged copy's own loop and ``generate`` over the adapters),
so a setting means the same thing in the chat, the notebooks and the benchmarks. The steps run in the order
transformers applies them: the penalty on the raw logits, then temperature, then the three filters, each on
what the previous one kept.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # torch only where tokens are drawn: the task table imports this module
    import torch


@dataclass(frozen=True)
class Decoding:
    top_k: int = 50                  # keep the k most likely tokens (transformers' default; 0: no limit)
    top_p: float = 1.0               # then the fewest whose probability adds up to top_p (1.0: off)
    min_p: float = 0.0               # then drop tokens under min_p × the most likely one's probability (0: off)
    repetition_penalty: float = 1.0  # a token already in the answer: logit ÷ penalty when > 0, × when < 0 (1.0: off)

    def __post_init__(self):
        from .errors import OhloraError

        if self.top_k < 0 or not 0 < self.top_p <= 1 or not 0 <= self.min_p < 1 or self.repetition_penalty <= 0:
            raise OhloraError(f"decoding settings out of range: {self}",
                              fix="top_k ≥ 0, 0 < top_p ≤ 1, 0 ≤ min_p < 1, repetition_penalty > 0")


DEFAULT_DECODING = Decoding()        # the original's sampling: temperature and transformers' top-k of 50


def candidates(logits: torch.Tensor, temperature: float, decoding: Decoding = DEFAULT_DECODING,
               previous: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, columns)``: the tokens one row of ``logits`` may draw and their scaled logits, most likely
    first; ``previous`` holds the columns already generated (for the repetition penalty)."""
    import torch

    logits = logits.float()
    if decoding.repetition_penalty != 1.0 and previous is not None and previous.numel():
        logits = logits.clone()
        seen = logits[previous]
        logits[previous] = torch.where(seen > 0, seen / decoding.repetition_penalty, seen * decoding.repetition_penalty)
    logits = logits / temperature
    k = decoding.top_k or logits.shape[-1]
    values, columns = torch.topk(logits, min(k, logits.shape[-1]))
    finite = torch.isfinite(values)   # columns outside a restricted vocabulary are -inf
    values, columns = values[finite], columns[finite]
    probabilities = torch.softmax(values, -1)
    keep = torch.ones_like(values, dtype=torch.bool)
    if decoding.top_p < 1.0:
        keep &= (probabilities.cumsum(-1) - probabilities) < decoding.top_p   # the token that crosses p stays
    if decoding.min_p > 0.0:
        keep &= probabilities >= decoding.min_p * probabilities[0]
    return values[keep], columns[keep]


class RowDecoding:
    """Logits processor for ``generate``: each row's temperature and decoding (rows of different tasks in one
    batch), the tokens after ``prompt_length`` counted for the repetition penalty."""

    def __init__(self, temperatures: list[float], decodings: list[Decoding], prompt_length: int):
        self.temperatures, self.decodings, self.prompt_length = temperatures, decodings, prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        import torch

        warped = torch.full_like(scores, float("-inf"))
        for row, (temperature, decoding) in enumerate(zip(self.temperatures, self.decodings)):
            values, columns = candidates(scores[row], temperature, decoding, input_ids[row, self.prompt_length:])
            warped[row, columns] = values.to(warped.dtype)
        return warped
