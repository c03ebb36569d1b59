"""A faster output layer for sampling: logits only for the vocabulary a Korean chat can use.

Usage::

    keep = study_token_ids(tokenizer)                 # Hangul, emoji, digits, punctuation + the study's text
    restrict_output_layer(causal_lm, keep)            # sampling never leaves ``keep``

Why: gemma-3-270m's output layer is a 262,144 × 640 matrix — more weights than the other 18 layers
together — and sampling reads all of it for every new token. Oh-LoRA answers in Korean with emoji, so
most of those rows (English words, code, other scripts) can never be a good next token. Keeping only
the rows of tokens made of Hangul, emoji and symbols, digits, punctuation and spaces, plus every token
of the study's own data and markers and the special tokens, leaves 11,788 of its 262,144 rows (4.5 %).

What changes: the logits of the kept tokens are exactly the full layer's; every other token gets
``-inf``, so sampling draws from the model's distribution renormalised over the kept tokens. What a
model trained on this data writes is (almost) always inside that set; an answer that needed a Latin word
the data never used gets a neighbouring token instead. The LoRA training loss is taken over the same rows
(``finetune.completion_positions_loss(..., vocabulary=...)``): the cross-entropy of the distribution the
chat samples from, at 4.5 % of the output layer's cost. The validation loss and notebook 02's metrics use
the full layer; the chat uses this one by default.
"""
from __future__ import annotations

import re
import unicodedata

import torch

from .paths import SYNONYMS_FILE
from .data import load_ethics, load_fine_tuning, load_memory
from .errors import OhloraError
from .tasks import all_markers

HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
ALLOWED_ASCII = re.compile(r"[0-9\s!\"#$%&'()*+,\-./:;<=>?@\[\]^_`{|}~]*")   # digits, punctuation, spaces
SPACE_MARKERS = "▁Ġ"   # how SentencePiece / byte-level BPE tokenizers spell a leading space


def allowed_piece(text: str) -> bool:
    """Hangul, emoji / symbols, digits, punctuation and spaces only (no Latin letters, no other scripts)."""
    for char in text:
        if HANGUL.match(char) or ALLOWED_ASCII.fullmatch(char):
            continue
        if unicodedata.category(char) in ("So", "Sk", "Sm", "Mn", "Cf", "Zs") or ord(char) >= 0x1F000:
            continue
        return False
    return True


def study_texts() -> list[str]:
    """Every text of the study's data (fine-tuning columns, ethics prompts, memory lines, synonyms, markers)."""
    fine_tuning = load_fine_tuning()
    texts = [str(value) for column in ("input_data", "output_message", "summary", "memory", "eyes_mouth_pose")
             for value in fine_tuning[column] if str(value)]
    texts += list(load_ethics()["text"])
    memory = load_memory()
    texts += list(memory["message"]) + [f"[{key}: {value}]" for key, value in zip(memory["key"], memory["value"])]
    texts += SYNONYMS_FILE.read_text(encoding="utf-8").splitlines()
    return texts + all_markers()


def study_token_ids(tokenizer) -> torch.LongTensor:
    """Sorted ids of the tokens sampling may produce (see the module docstring)."""
    keep = set(tokenizer.all_special_ids)
    for piece, token_id in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string([piece])
        if text.strip(SPACE_MARKERS + " ") and allowed_piece(text.strip(SPACE_MARKERS)):
            keep.add(token_id)
    texts = study_texts()
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        keep.update(ids)
    for ids in tokenizer([" " + text for text in texts], add_special_tokens=False)["input_ids"]:
        keep.update(ids)   # a text after a space can tokenise differently
    return torch.tensor(sorted(keep), dtype=torch.long)


class RestrictedOutputLayer(torch.nn.Module):
    """The output layer's rows for ``keep`` only; other tokens get ``-inf`` in a full-size logits tensor."""

    def __init__(self, full_layer: torch.nn.Module, keep: torch.LongTensor):
        super().__init__()
        weight = full_layer.weight.detach()
        self.vocab_size = weight.shape[0]
        self.register_buffer("keep", keep.clone())
        self.weight = torch.nn.Parameter(weight[keep].clone(), requires_grad=False)
        bias = getattr(full_layer, "bias", None)
        self.bias = None if bias is None else torch.nn.Parameter(bias.detach()[keep].clone(), requires_grad=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        kept = torch.nn.functional.linear(hidden, self.weight, self.bias)
        logits = kept.new_full((*kept.shape[:-1], self.vocab_size), float("-inf"))
        return logits.index_copy_(-1, self.keep, kept)


def restrict_output_layer(causal_lm, keep: torch.LongTensor) -> RestrictedOutputLayer:
    """Swap ``causal_lm``'s output layer for the restricted one (inference only: the model is not trainable after)."""
    full = causal_lm.get_output_embeddings()
    if isinstance(full, RestrictedOutputLayer):
        return full
    if full is None or keep.numel() == 0 or int(keep.max()) >= full.weight.shape[0]:
        raise OhloraError("cannot restrict the output layer: the token ids do not fit this model",
                          fix="build the ids with study_token_ids(tokenizer) of the same model")
    restricted = RestrictedOutputLayer(full, keep).to(full.weight.device)
    causal_lm.set_output_embeddings(restricted)
    causal_lm.config.tie_word_embeddings = False   # never re-tie the small layer to the full embedding
    return restricted
