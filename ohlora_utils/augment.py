"""Synonym-group replacement, the original's data augmentation for the reply task (docs/fine_tuning.md).

Usage: ``augmenter = SynonymAugmenter.from_file(); augmenter.augment(text, random.Random(epoch))``

Every occurrence of a member of a synonym group (나는↔난, 음악↔노래, ㅠㅠ↔ㅜㅜ, …) is replaced by a member
of its group drawn at random — in the prompt and the answer alike — so each epoch sees a new wording.
Structure is never touched: task markers, context prefixes, a bracketed ``[key: value]`` memory and the
``(지금은 X요일 Y)`` time info are copied as they are.

Matching is by word start: a member beginning with a Hangul syllable only matches where a word begins
(so 음악 in 음악을 swaps, as in the original, but not in 클래식음악), a one-syllable member such as 난 or
넌 only as a whole word (so 난방 and 넌센스 stay), a Latin member only as a whole word (AI, not AIR);
jamo and punctuation members (ㅠㅠ, 음…) match anywhere.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

from .errors import OhloraError
from .paths import SYNONYMS_FILE
from .tasks import all_markers

GROUP_SEPARATOR = " | "   # members of one group on one line
SYLLABLE = "[가-힣]"
LATIN = "[A-Za-z]"
# spans copied verbatim: markers, [key: value] memories, the time-info prefix
PROTECTED = re.compile("|".join([*(re.escape(m) for m in sorted(all_markers(), key=len, reverse=True)),
                                 r"\[[^\[\]]*\]", r"\(지금은 [^()]*\)"]))


def load_synonym_groups(path: Path = SYNONYMS_FILE) -> list[tuple[str, ...]]:
    """Groups from a text file: one group per line, members separated by `` | ``, ``#`` comments."""
    path = Path(path)
    if not path.is_file():
        raise OhloraError(f"synonym file {path} does not exist", fix="restore it from git (git checkout -- data/)")
    groups, owner = [], {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        members = tuple(member.strip() for member in line.split("|"))
        if len(members) < 2 or any(not member for member in members):
            raise OhloraError(f"{path}: line {line_number} is not a group of two or more members",
                              fix=f"write members separated by '{GROUP_SEPARATOR}'")
        for member in members:
            if member in owner:
                raise OhloraError(f"{path}: line {line_number}: {member!r} is already in the group on "
                                  f"line {owner[member]}", fix="keep each member in one group only")
            owner[member] = line_number
        groups.append(members)
    return groups


def _word_pattern(member: str) -> str:
    pattern = re.escape(member)
    if re.match(SYLLABLE, member):
        pattern = f"(?<!{SYLLABLE})" + pattern
        if len(member) == 1:
            pattern += f"(?!{SYLLABLE})"
    if re.match(LATIN, member):
        pattern = f"(?<!{LATIN})" + pattern
    if re.search(LATIN + "$", member):
        pattern += f"(?!{LATIN})"
    return f"(?:{pattern})"


class SynonymAugmenter:
    def __init__(self, groups: list[tuple[str, ...]]):
        self.groups = groups
        self.group_of = {member: group for group in groups for member in group}
        ordered = sorted(self.group_of, key=len, reverse=True)  # longest first: 나에게 before 나
        self.pattern = re.compile("|".join(_word_pattern(member) for member in ordered))

    @classmethod
    def from_file(cls, path: Path = SYNONYMS_FILE) -> "SynonymAugmenter":
        return cls(load_synonym_groups(path))

    def augment(self, text: str, rng: random.Random) -> str:
        """``text`` with every synonym occurrence outside protected spans redrawn from its group."""
        pieces, last = [], 0
        for protected in PROTECTED.finditer(text):
            pieces.append(self._swap(text[last:protected.start()], rng))
            pieces.append(protected.group(0))
            last = protected.end()
        pieces.append(self._swap(text[last:], rng))
        return "".join(pieces)

    def _swap(self, span: str, rng: random.Random) -> str:
        return self.pattern.sub(lambda m: rng.choice(self.group_of[m.group(0)]), span)

    def augment_pair(self, prompt: str, completion: str, rng: random.Random) -> tuple[str, str]:
        return self.augment(prompt, rng), self.augment(completion, rng)

    def epoch_draws(self, prompt: str, completion: str, seed: int, epochs: int = 3) -> list[str]:
        """``prompt + completion`` as epochs ``0 … epochs-1`` would redraw it (one ``Random(seed·1000 + epoch)`` each)."""
        return ["".join(self.augment_pair(prompt, completion, random.Random(seed * 1000 + epoch)))
                for epoch in range(epochs)]

    def rows_with_synonyms(self, frame, column_pairs=("input_data", "output_message")):
        """The rows of ``frame`` where any of the columns holds a word of a synonym group."""
        texts = frame[column_pairs[0]].astype(str)
        for column in column_pairs[1:]:
            texts = texts + "\n" + frame[column].astype(str)   # a separator: no false word start across columns
        return frame[texts.str.contains(self.pattern)]
