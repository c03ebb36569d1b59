"""The yardstick's files: sizes, validation with row and column, and no overlap with any training file."""
import json

import pytest

from ohlora_utils import eval_data
from ohlora_utils.data import DataValidationError
from ohlora_utils.eval_data import (EVERYDAY_KINDS, SANCTION_CATEGORIES, Fact, eval_texts, find_overlaps,
                                    load_conversations, load_everyday, load_sanction, normalise_for_overlap,
                                    seen_in_training, training_texts)


@pytest.fixture(scope="module")
def yardstick():
    return load_everyday(), load_sanction(), load_conversations()


def test_everyday_messages_cover_every_kind_at_the_promised_size(yardstick):
    everyday, _, _ = yardstick
    assert len(everyday) >= 1500
    counts = everyday["kind"].value_counts()
    assert set(counts.index) == set(EVERYDAY_KINDS) and counts.min() >= 40
    for typed in ("응", "ㅇㅇ", "아니", "안녕", "로라야", "좋아"):   # the forms that broke the chat
        assert typed in set(everyday["text"])


def test_sanction_messages_cover_every_category_with_evasions(yardstick):
    _, sanction, _ = yardstick
    assert len(sanction) >= 300
    by_category = sanction.groupby("category")
    assert set(by_category.groups) == set(SANCTION_CATEGORIES) and by_category.size().min() >= 100
    assert (by_category["evasion"].nunique() == len(eval_data.EVASIONS)).all()


def test_conversations_state_facts_ask_for_them_and_include_sanction_turns(yardstick):
    _, _, conversations = yardstick
    assert len(conversations) >= 120
    assert all(3 <= len(c.turns) <= 8 for c in conversations)
    assert all(any(t.save for t in c.turns) and any(t.recall is not None for t in c.turns) for c in conversations)
    sanctioned = {t.sanction for c in conversations for t in c.turns if t.sanction}
    assert sanctioned == set(SANCTION_CATEGORIES)


def test_no_yardstick_message_equals_or_nearly_equals_a_training_row(yardstick):
    overlaps = find_overlaps(eval_texts(*yardstick), training_texts())
    assert overlaps == [], "\n".join(f"{o.where} {o.text!r} ~ {o.source} {o.training_text!r} (Jaccard {o.jaccard})"
                                     for o in overlaps)


# --- the overlap check itself --------------------------------------------------------------------------

def test_normalising_drops_spaces_punctuation_emoji_and_long_runs():
    assert normalise_for_overlap("나 간호사야!! 😊") == normalise_for_overlap("나간호사야") == "나간호사야"
    assert normalise_for_overlap("ㅋㅋㅋㅋㅋ 진짜?") == "ㅋㅋ진짜"
    assert normalise_for_overlap("🙂🙂🙂") == ""


TRAINING = {"data/ethics": ["오늘 저녁 뭐 먹을까 고민된다", "응"], "data/memory (message)": ["우리 고양이 이름은 나비야"]}


@pytest.mark.parametrize("text, found", [
    ("오늘 저녁 뭐 먹을까 고민된다!!", True),          # equal after normalising
    ("오늘저녁 뭐 먹을까 고민된다 😋", True),
    ("오늘 저녁 뭐 먹을까 고민된다 ㅠ", True),          # 3-gram Jaccard 10/11 ≥ 0.8
    ("오늘 저녁 뭐 먹을까 고민이 된다", False),         # Jaccard 8/13: a new sentence
    ("우리 강아지 이름은 콩이야", False),               # shares words, not the message
    ("응", False),                                    # short formulaic messages may be in training
])
def test_overlap_finds_equal_and_near_copies_of_longer_messages(text, found):
    overlaps = find_overlaps({"everyday e1": text}, TRAINING)
    assert bool(overlaps) is found
    if found:
        assert overlaps[0].source == "data/ethics" and overlaps[0].jaccard >= 0.8


def test_seen_in_training_separates_memorised_forms_from_unseen_ones():
    assert seen_in_training(["응", "응!", "ㅇㅇ", "🙂"], {"x": ["응", "🙂"]}) == [True, True, False, True]


def test_a_fact_is_found_in_a_memory_holding_one_of_its_words():
    fact = Fact(("반려동물",), "고양이 나비", ("나비", "고양이"))
    assert fact.found_in("[반려동물: 고양이 나 비]") and fact.found_in("[반려동물 이름: 나비]")
    assert not fact.found_in("[반려동물: 강아지]") and not fact.found_in(None)


# --- validation with row and column --------------------------------------------------------------------

def test_a_broken_everyday_file_names_each_problem_by_row_and_column(tmp_path):
    path = tmp_path / "everyday.csv"
    path.write_text("id,kind,text\ne1,reaction,응\ne2,romance,안녕\ne3,greeting,\ne1,name,로라야\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as error:
        load_everyday(path)
    problems = {(p.line, p.column) for p in error.value.problems}
    assert problems == {(3, "kind"), (4, "text"), (5, "id")}


def test_a_broken_sanction_file_names_category_and_evasion(tmp_path):
    path = tmp_path / "sanction.csv"
    path.write_text("id,category,evasion,text\ns1,일반,none,안녕\ns2,정치,leet,너 어느 당이야\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as error:
        load_sanction(path)
    assert {(p.line, p.column) for p in error.value.problems} == {(2, "category"), (3, "evasion")}


def _conversation(**changes):
    turns = [{"user": "나 간호사야", "save": {"key": "직업", "value": "간호사", "match": ["간호사"]}},
             {"user": "ㅋㅋ"}, {"user": "내 직업 기억나?", "recall": 0}]
    return json.dumps({"id": "c1", "topic": "직업", "turns": turns, **changes}, ensure_ascii=False)


def test_conversations_load_with_their_expectations(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(_conversation() + "\n", encoding="utf-8")
    [conversation] = load_conversations(path)
    assert conversation.turns[0].save.keys == ("직업",) and conversation.turns[2].recall == 0
    assert conversation.turns[1].save is None and conversation.turns[1].sanction is None


def test_a_broken_conversation_file_names_line_and_field(tmp_path):
    bad_recall = [{"user": "안녕"}, {"user": "ㅋㅋ"}, {"user": "기억나?", "recall": 0}]
    early_sanction = [{"user": "사귀자", "sanction": "사랑 고백/만남"}, {"user": "ㅋㅋ"},
                      {"user": "나 간호사", "save": {"key": "직업", "value": "간호사", "match": []}}]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join([
        _conversation(),
        "{not json",
        _conversation(id="c2", turns=bad_recall),
        _conversation(id="c3", turns=early_sanction),
        _conversation(id="c1", turns=[{"user": "하나"}]),
    ]) + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as error:
        load_conversations(path)
    problems = {(p.line, p.column) for p in error.value.problems}
    assert {(3, "turns[2].recall"), (4, "turns[0].sanction"), (4, "turns[2].save.match"), (5, "id"),
            (5, "turns")} <= problems
    assert any(line == 2 and column.startswith("(char") for line, column in problems)
