"""The everyday-conversation yardstick's files (``data/eval/``): validated loaders and the no-overlap check.

Usage::

    everyday, sanction = load_everyday(), load_sanction()      # DataFrames, every row validated
    conversations = load_conversations()                        # list[Conversation]
    find_overlaps(eval_texts(), training_texts())              # [] when the yardstick is apart from training

The yardstick is what users really type: short answers, emoji, greetings, her name, typos, family talk,
stated facts (``everyday_messages.csv``); messages that should count toward a sanction, with evasions
(``sanction_messages.csv``); and scripted conversations whose turns say what should be saved, brought
back and sanctioned (``conversations.jsonl``). It is never used to fit anything: not training data, not
thresholds, not presets. ``benchmarks/everyday_chat.py`` runs the chat over it.

Like ``data``'s loaders, every problem is named by file, row (line number) and column (or JSON field).
"""
from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .data import (ETHICS_CATEGORIES, DataValidationError, Problem, load_ethics, load_fine_tuning, load_memory,
                   validate_rows)
from .errors import OhloraError
from .formats import format_memory_item, split_context
from .paths import DATA_DIR

EVAL_DIR = DATA_DIR / "eval"
EVERYDAY_CSV = EVAL_DIR / "everyday_messages.csv"
SANCTION_CSV = EVAL_DIR / "sanction_messages.csv"
CONVERSATIONS_JSONL = EVAL_DIR / "conversations.jsonl"

EVERYDAY_COLUMNS = ("id", "kind", "text")
SANCTION_COLUMNS = ("id", "category", "evasion", "text")
EVERYDAY_KINDS = (                 # what people type to a chat companion; every one is ordinary conversation
    "reaction",          # short reactions and answers: 응, ㅇㅇ, 아니, ㅋㅋ, 헐, 진짜?
    "emoji",             # emoji only
    "emoji_mixed",       # a few words and emoji
    "greeting",          # greetings and goodnights: 안녕, 잘 자, 나 왔어
    "name",              # her name alone or a call: 로라야, 오로라
    "feeling",           # one-word feelings: 좋아, 졸려, 배고파
    "typo",              # typos, missing spaces
    "mixed_language",    # English or mixed Korean-English
    "about_her",         # questions about Oh-LoRA (not romantic)
    "family",            # one's own family: 엄마한테 혼났어, 할머니 보고 싶다
    "swearing",          # swearing at a situation, never at anyone's family
    "self_disclosure",   # facts about oneself: 나 간호사야, 고양이 키워
    "small_talk",        # everyday topics, advice, look-alikes of the sanction categories
)
SANCTION_CATEGORIES = tuple(name for name in ETHICS_CATEGORIES if name != "일반")
EVASIONS = ("none", "spacing", "emoji", "typo", "initials", "mixed")
MIN_TURNS, MAX_TURNS = 3, 8        # turns per scripted conversation

OVERLAP_MIN_CHARS = 8              # shorter messages (응, ㅇㅇ, 안녕, an emoji) may equal training rows
OVERLAP_MAX_JACCARD = 0.8          # character 3-gram Jaccard at or above this is a near-copy


# --- the two CSV files ----------------------------------------------------------------------------------

def _check_id(line: int, row: dict, prefix: str) -> list[Problem]:
    if not re.fullmatch(rf"{prefix}\d+", row["id"]):
        return [Problem(line, "id", f"{row['id']!r} is not {prefix} followed by digits")]
    return []


def _check_text(line: int, row: dict) -> list[Problem]:
    if not row["text"].strip():
        return [Problem(line, "text", "is empty")]
    if row["text"] != row["text"].strip():
        return [Problem(line, "text", "has spaces at its start or end")]
    return []


def _one_of(line: int, row: dict, name: str, allowed) -> list[Problem]:
    return [] if row[name] in allowed else [Problem(line, name, f"{row[name]!r} is not one of {', '.join(allowed)}")]


def check_everyday_row(line: int, row: dict) -> list[Problem]:
    return _check_id(line, row, "e") + _one_of(line, row, "kind", EVERYDAY_KINDS) + _check_text(line, row)


def check_sanction_row(line: int, row: dict) -> list[Problem]:
    return (_check_id(line, row, "s") + _one_of(line, row, "category", SANCTION_CATEGORIES)
            + _one_of(line, row, "evasion", EVASIONS) + _check_text(line, row))


def _with_unique_ids(check_row):
    """``check_row`` plus: an ``id`` seen on an earlier row is a problem (one pass names every problem)."""
    seen: dict[str, int] = {}

    def checked(line: int, row: dict) -> list[Problem]:
        problems = check_row(line, row)
        if row["id"] in seen:
            problems.append(Problem(line, "id", f"duplicates row {seen[row['id']]}"))
        seen.setdefault(row["id"], line)
        return problems

    return checked


def load_everyday(path: Path = EVERYDAY_CSV) -> pd.DataFrame:
    """Everyday user messages: ``id`` (e…), ``kind`` (EVERYDAY_KINDS), ``text``; index = line number."""
    return validate_rows(path, EVERYDAY_COLUMNS, _with_unique_ids(check_everyday_row), unique=("text",))


def load_sanction(path: Path = SANCTION_CSV) -> pd.DataFrame:
    """Messages that should count: ``id`` (s…), ``category``, ``evasion`` (EVASIONS), ``text``."""
    return validate_rows(path, SANCTION_COLUMNS, _with_unique_ids(check_sanction_row), unique=("text",))


# --- the scripted conversations -------------------------------------------------------------------------

@dataclass(frozen=True)
class Fact:
    """A fact the user states: the memory that should be saved, and words any right memory contains."""
    keys: tuple[str, ...]      # the expected key (first) and other acceptable keys
    value: str
    match: tuple[str, ...]     # a saved or retrieved item is right when it contains one of these

    @property
    def item(self) -> str:
        """The memory item a perfect memory would hold: ``[expected key: value]``."""
        return format_memory_item(self.keys[0], self.value)

    def found_in(self, item: str | None) -> bool:
        """True when ``item`` (a ``[key: value]`` memory) holds one of the fact's words, spaces ignored."""
        if not item:
            return False
        squeezed = item.replace(" ", "")
        return any(word.replace(" ", "") in squeezed for word in self.match)


@dataclass(frozen=True)
class Turn:
    user: str
    save: Fact | None = None            # this turn states a fact worth remembering
    recall: int | None = None           # this turn needs the fact stated at turn ``recall`` (0-based)
    sanction: str | None = None         # this turn should count toward a sanction of this category


@dataclass(frozen=True)
class Conversation:
    id: str
    topic: str
    turns: tuple[Turn, ...] = field(default_factory=tuple)
    line: int = 0                       # line number in the file


def _fact(raw, where: str, line: int, problems: list[Problem]) -> Fact | None:
    if not isinstance(raw, dict):
        problems.append(Problem(line, where, "must be an object with key, value and match"))
        return None
    keys = raw.get("key")
    keys = [keys] if isinstance(keys, str) else keys
    match = raw.get("match")
    if not keys or not all(isinstance(k, str) and k.strip() and not set(k) & set("[]:") for k in keys):
        problems.append(Problem(line, f"{where}.key", "must be a key (or a list of keys) without [, ] or :"))
    if not isinstance(raw.get("value"), str) or not raw["value"].strip():
        problems.append(Problem(line, f"{where}.value", "must be non-empty text"))
    if not isinstance(match, list) or not match or not all(isinstance(m, str) and m.strip() for m in match):
        problems.append(Problem(line, f"{where}.match", "must be a non-empty list of words"))
    unknown = set(raw) - {"key", "value", "match"}
    if unknown:
        problems.append(Problem(line, where, f"unknown field(s) {', '.join(sorted(unknown))}"))
    if any(p.column.startswith(where) for p in problems):
        return None
    return Fact(tuple(k.strip() for k in keys), raw["value"].strip(), tuple(m.strip() for m in match))


def _turn(raw, index: int, line: int, problems: list[Problem], earlier: list[Turn]) -> Turn | None:
    where = f"turns[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("user"), str) or not raw["user"].strip():
        problems.append(Problem(line, f"{where}.user", "must be the user's non-empty message"))
        return None
    unknown = set(raw) - {"user", "save", "recall", "sanction"}
    if unknown:
        problems.append(Problem(line, where, f"unknown field(s) {', '.join(sorted(unknown))}"))
    save = _fact(raw["save"], f"{where}.save", line, problems) if "save" in raw else None
    recall = raw.get("recall")
    if recall is not None and (not isinstance(recall, int) or isinstance(recall, bool) or not 0 <= recall < index
                               or earlier[recall] is None or earlier[recall].save is None):
        problems.append(Problem(line, f"{where}.recall", f"{recall!r} is not an earlier turn that saves a fact"))
        recall = None
    sanction = raw.get("sanction")
    if sanction is not None and sanction not in SANCTION_CATEGORIES:
        problems.append(Problem(line, f"{where}.sanction", f"{sanction!r} is not one of {', '.join(SANCTION_CATEGORIES)}"))
        sanction = None
    return Turn(raw["user"].strip(), save, recall, sanction)


def load_conversations(path: Path = CONVERSATIONS_JSONL) -> list[Conversation]:
    """Scripted conversations, one JSON object per line: ``{"id", "topic", "turns": [{"user", "save"?, …}]}``.

    Problems name the line and the JSON field (``turns[2].recall``). A turn that should be sanctioned must
    be the conversation's last (a block ends the chat); every ``recall`` points to an earlier ``save``.
    """
    path = Path(path)
    if not path.is_file():
        raise OhloraError(f"yardstick file {path} does not exist", fix="restore it from git (git checkout -- data/)")
    conversations, problems, seen = [], [], {}
    for line, text in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            problems.append(Problem(line, f"(char {error.colno})", f"is not valid JSON: {error.msg}"))
            continue
        if not isinstance(raw, dict):
            problems.append(Problem(line, "(all)", "must be a JSON object"))
            continue
        identity, topic, raw_turns = raw.get("id"), raw.get("topic"), raw.get("turns")
        if not isinstance(identity, str) or not identity.strip():
            problems.append(Problem(line, "id", "must be non-empty text"))
        elif identity in seen:
            problems.append(Problem(line, "id", f"{identity!r} duplicates line {seen[identity]}"))
        else:
            seen[identity] = line
        if not isinstance(topic, str) or not topic.strip():
            problems.append(Problem(line, "topic", "must be non-empty text"))
        if not isinstance(raw_turns, list) or not MIN_TURNS <= len(raw_turns) <= MAX_TURNS:
            problems.append(Problem(line, "turns", f"must be a list of {MIN_TURNS} to {MAX_TURNS} turns"))
            continue
        turns: list[Turn | None] = []
        for index, raw_turn in enumerate(raw_turns):
            turns.append(_turn(raw_turn, index, line, problems, turns))
        for index, turn in enumerate(turns[:-1]):
            if turn is not None and turn.sanction:
                problems.append(Problem(line, f"turns[{index}].sanction", "only the last turn may expect a sanction"))
        if None not in turns:
            conversations.append(Conversation(str(identity), str(topic), tuple(turns), line))
    if problems:
        raise DataValidationError(path, problems)
    return conversations


def conversation_frame(conversations: list[Conversation]) -> pd.DataFrame:
    """One row per turn: conversation, index, user text and its expectations (for tables and plots)."""
    return pd.DataFrame([{"conversation": c.id, "topic": c.topic, "turn": i, "user": t.user,
                          "save_key": t.save.keys[0] if t.save else "", "save_value": t.save.value if t.save else "",
                          "recall": t.recall, "sanction": t.sanction or ""}
                         for c in conversations for i, t in enumerate(c.turns)])


# --- the no-overlap check -------------------------------------------------------------------------------

def normalise_for_overlap(text: str) -> str:
    """Letters and digits only, lower-cased; runs of one character longer than 2 cut to 2 (ㅋㅋㅋㅋ → ㅋㅋ).

    Spaces, punctuation, symbols and emoji go, so "나 간호사야!!" and "나간호사야 😊" are the same message.
    """
    kept = "".join(ch for ch in unicodedata.normalize("NFC", text).lower()
                   if unicodedata.category(ch)[0] in "LN")
    return re.sub(r"(.)\1{2,}", r"\1\1", kept)


def trigrams(normalised: str) -> frozenset[str]:
    return frozenset(normalised[i:i + 3] for i in range(max(len(normalised) - 2, 1)))


def training_texts() -> dict[str, list[str]]:
    """Every text the study trains on, by file: user turns and replies, ethics prompts, memory messages."""
    fine_tuning = load_fine_tuning()
    memory = load_memory()
    return {
        "data/fine_tuning (user text)": [split_context(text).user_text for text in fine_tuning["input_data"]],
        "data/fine_tuning (reply)": fine_tuning["output_message"].tolist(),
        "data/ethics": load_ethics()["text"].tolist(),
        "data/memory (message)": memory["message"].tolist(),
        "data/memory (memory)": memory["memory"].tolist(),
    }


def eval_texts(everyday: pd.DataFrame | None = None, sanction: pd.DataFrame | None = None,
               conversations: list[Conversation] | None = None) -> dict[str, str]:
    """Every user message of the yardstick, by where it is (``everyday e12``, ``conversation c1-03 turn 2``)."""
    everyday = load_everyday() if everyday is None else everyday
    sanction = load_sanction() if sanction is None else sanction
    conversations = load_conversations() if conversations is None else conversations
    texts = {f"everyday {i}": t for i, t in zip(everyday["id"], everyday["text"])}
    texts |= {f"sanction {i}": t for i, t in zip(sanction["id"], sanction["text"])}
    texts |= {f"conversation {c.id} turn {n}": t.user for c in conversations for n, t in enumerate(c.turns)}
    return texts


@dataclass(frozen=True)
class Overlap:
    where: str          # the yardstick message
    text: str
    source: str         # the training file
    training_text: str
    jaccard: float      # 1.0 also for an exact match after normalising


def find_overlaps(eval_by_place: dict[str, str], training_by_source: dict[str, list[str]],
                  min_chars: int = OVERLAP_MIN_CHARS, max_jaccard: float = OVERLAP_MAX_JACCARD) -> list[Overlap]:
    """Yardstick messages of ≥ ``min_chars`` characters that equal or nearly equal a training text.

    Equal after ``normalise_for_overlap``, or character 3-gram Jaccard ≥ ``max_jaccard``. An inverted
    index over 3-grams keeps this to the candidate pairs that share any 3-gram.
    """
    index: dict[str, list[int]] = defaultdict(list)
    training: list[tuple[str, str, str, frozenset[str]]] = []
    for source, texts in training_by_source.items():
        for text in texts:
            normal = normalise_for_overlap(text)
            if normal:
                training.append((source, text, normal, grams := trigrams(normal)))
                for gram in grams:
                    index[gram].append(len(training) - 1)
    exact = {normal: n for n, (_, _, normal, _) in enumerate(training)}
    found = []
    for where, text in eval_by_place.items():
        if len(text.strip()) < min_chars:
            continue
        normal = normalise_for_overlap(text)
        if not normal:
            continue
        if normal in exact:
            source, training_text, _, _ = training[exact[normal]]
            found.append(Overlap(where, text, source, training_text, 1.0))
            continue
        grams, shared = trigrams(normal), defaultdict(int)
        for gram in grams:
            for n in index.get(gram, ()):
                shared[n] += 1
        best = max(((count / (len(grams) + len(training[n][3]) - count), n) for n, count in shared.items()),
                   default=(0.0, -1))
        if best[0] >= max_jaccard:
            source, training_text, _, _ = training[best[1]]
            found.append(Overlap(where, text, source, training_text, round(best[0], 3)))
    return found


def _identity(text: str) -> str:
    """What two messages must share to be "the same message": letters and digits, else the text sans spaces."""
    return normalise_for_overlap(text) or "".join(text.split())


def seen_in_training(texts, training_by_source: dict[str, list[str]] | None = None) -> list[bool]:
    """For each text: is it, after normalising, a training text? (short formulaic messages may be)"""
    training_by_source = training_texts() if training_by_source is None else training_by_source
    known = {_identity(t) for texts_ in training_by_source.values() for t in texts_}
    return [_identity(t) in known for t in texts]
