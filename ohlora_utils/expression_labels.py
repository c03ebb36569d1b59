"""The expression labelling guide (docs/expression_labels.md) as code: her reply's words decide her face.

Usage: ``label_expression("헐 진짜?! 합격 축하해 🎉")`` → ``("아주 크게", "아주 크게", "보통")``;
``python -m ohlora_utils.expression_labels data/fine_tuning/ohlora_fine_tuning.csv`` relabels a file in place.

Each part (eyes, mouth, pose) goes through its rules in order and takes the first that matches; a rule
matches when the reply contains one of its cues (``START:`` cues only as the reply's first word, so that
"다녀와" is not the interjection 와, nor "오래" the interjection 오). The fine-tuning data is labelled by this function, so a label is
something the reply's own words decide; a blind human re-label of a sample measures how well the written
guide reads (data/README.md).
"""
from __future__ import annotations

import re

from .formats import format_expression

START = "START:"   # a cue that counts only at the very start of the reply (after spaces)

EYES_RULES = (   # (label, cues), first match wins; 보통 otherwise
    ("아주 크게", ("헐", "대박", "세상에", "말도 안 돼", "?!", "😱", "😲", "🤯")),
    ("크게", (START + "오", START + "우와", START + "와", START + "헉", "진짜?", "정말?", "축하", "궁금", "어땠어",
             "😮", "👀")),
    ("작게", ("졸려", "졸리", "피곤", "ㅠ", "ㅜ", "미안", "힘들었", "괜찮아", "푹 쉬", "잘 자", "속상", "😢", "🥲",
             "😴", "😭")),
)
MOUTH_RULES = (
    ("아주 크게", ("ㅋㅋㅋ", "꺄", "야호", "최고!", "신난다", "축하해!", "🎉", "🥳", "🤣", "😆")),
    ("크게", ("ㅋㅋ", "ㅎㅎ", "좋아!", "파이팅", "화이팅", "😊", "😄", "😁", "😋", "☺️", "🙂", "👍", "💪", "✨")),
)
REFUSAL_CUES = ("미안", "부담")
SMILE_CUES = ("😅", "ㅋㅋ", "ㅎㅎ", "🙈", "😳", "🤭")
POSE_RULES = (
    ("많이", ("부끄", "에이", "아 몰라", "비밀", "헤헤", "히히", "😳", "🙈", "🤭", "놀리지")),
    ("없음", ("괜찮아", "걱정", "꼭", "천천히", "조심", "무리하지", "푹 쉬", "잘 자", "힘들었겠", "고생했", "미안",
             "부담")),
)
DEFAULTS = {"eyes": "보통", "mouth": "보통", "pose": "보통"}


def _has(reply: str, cue: str) -> bool:
    if cue.startswith(START):
        # the interjection itself, repeated or not, then no further syllable: 오! / 오오 count, 오빠 / 오래 do not
        return re.match(r"\s*(?:" + re.escape(cue[len(START):]) + r")+(?![가-힣])", reply) is not None
    return cue in reply


def _first_rule(reply: str, rules, default: str) -> str:
    for label, cues in rules:
        if any(_has(reply, cue) for cue in cues):
            return label
    return default


def label_expression(reply: str) -> tuple[str, str, str]:
    """(eyes, mouth, pose) for her reply, by the guide's rules."""
    eyes = _first_rule(reply, EYES_RULES, DEFAULTS["eyes"])
    mouth = _first_rule(reply, MOUTH_RULES, DEFAULTS["mouth"])
    smiling_refusal = any(c in reply for c in REFUSAL_CUES) and any(c in reply for c in SMILE_CUES)
    pose = "많이" if smiling_refusal else _first_rule(reply, POSE_RULES, DEFAULTS["pose"])
    return eyes, mouth, pose


def relabel_rows(rows: list[dict]) -> int:
    """Set ``eyes``, ``mouth``, ``pose`` and ``eyes_mouth_pose`` of fine-tuning rows from their replies;
    returns how many rows changed."""
    changed = 0
    for row in rows:
        eyes, mouth, pose = label_expression(row["output_message"])
        before = (row["eyes"], row["mouth"], row["pose"])
        row.update(eyes=eyes, mouth=mouth, pose=pose, eyes_mouth_pose=format_expression(eyes, mouth, pose))
        changed += before != (eyes, mouth, pose)
    return changed


def main() -> None:
    import argparse
    import csv
    import io
    from pathlib import Path

    from .storage import atomic_write_text

    parser = argparse.ArgumentParser(description="Relabel a fine-tuning CSV's expressions by the guide.")
    parser.add_argument("csv", type=Path)
    path = parser.parse_args().csv
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    changed = relabel_rows(rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, out.getvalue())
    print(f"{path}: {changed} of {len(rows)} rows relabelled")


if __name__ == "__main__":
    main()
