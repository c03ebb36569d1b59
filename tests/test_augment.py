"""Synonym augmentation: seeded, on the fly, and never touching structure."""
import random

import pytest

from ohlora_utils.augment import SynonymAugmenter, load_synonym_groups
from ohlora_utils.errors import OhloraError
from ohlora_utils.tasks import TASKS

GROUPS = [("나는", "난"), ("음악", "노래"), ("ㅠㅠ", "ㅜㅜ"), ("인공지능", "AI"), ("정말", "진짜")]


@pytest.fixture
def augmenter():
    return SynonymAugmenter(GROUPS)


def draws(augmenter, text, n=40):
    return {augmenter.augment(text, random.Random(seed)) for seed in range(n)}


def test_every_member_can_become_every_other(augmenter):
    assert draws(augmenter, "나는 음악 좋아해") == {
        "나는 음악 좋아해", "난 음악 좋아해", "나는 노래 좋아해", "난 노래 좋아해"}


def test_same_seed_same_result_and_epochs_differ(augmenter):
    text = "나는 정말 음악이 좋아 ㅠㅠ 인공지능도 음악 들어?"
    assert augmenter.augment(text, random.Random(7)) == augmenter.augment(text, random.Random(7))
    assert len(draws(augmenter, text)) > 4


def test_words_only_match_at_word_starts(augmenter):
    assert draws(augmenter, "난방 틀었어 클래식음악 AIR") == {"난방 틀었어 클래식음악 AIR"}
    assert draws(augmenter, "속상해ㅠㅠ") == {"속상해ㅠㅠ", "속상해ㅜㅜ"}  # emoticons attach anywhere


def test_markers_memory_and_time_info_are_never_touched(augmenter):
    row = {"input_data": "[좋아하는 음식: 나는 음악] (지금은 토요일 저녁) 나는 오늘 심심해",
           "output_message": "난 음악 들을래"}
    prompt = TASKS["output_message"].prompt(row)
    for result in draws(augmenter, prompt):
        assert result.startswith("[좋아하는 음식: 나는 음악] (지금은 토요일 저녁) ")
        assert result.endswith(" (답변 시작) ### 답변:")
    completion = TASKS["output_message"].completion(row)
    assert all(r.endswith(" (답변 종료)") for r in draws(augmenter, completion))


def test_prompt_and_answer_are_both_augmented(augmenter):
    results = {augmenter.augment_pair("나는 심심해", "난 안 심심해", random.Random(s)) for s in range(30)}
    assert {p for p, _ in results} == {"나는 심심해", "난 심심해"}
    assert {c for _, c in results} == {"나는 안 심심해", "난 안 심심해"}


def test_synonym_file_errors_name_the_line(tmp_path):
    path = tmp_path / "syn.txt"
    path.write_text("# comment\n나는 | 난\n혼자\n", encoding="utf-8")
    with pytest.raises(OhloraError, match="line 3 is not a group"):
        load_synonym_groups(path)
    path.write_text("나는 | 난\n난 | 나\n", encoding="utf-8")
    with pytest.raises(OhloraError, match="'난' is already in the group on line 1"):
        load_synonym_groups(path)


def test_committed_synonym_file_has_the_original_groups():
    groups = load_synonym_groups()
    for original in [("나는", "난"), ("나에게", "내게"), ("인공지능", "AI"), ("음…", "흠…"), ("ㅠㅠ", "ㅜㅜ"),
                     ("음악", "노래"), ("축하해", "ㅊㅋㅊㅋ"), ("오!", "우와!", "와우")]:
        assert original in groups
    assert len(groups) >= 20
    members = {m for g in groups for m in g}
    assert not members & {"미안해", "이따가"}  # refusal word and time word must survive augmentation


def test_epoch_draws_are_the_draws_training_makes_each_epoch(augmenter):
    prompt, completion = "나는 음악 좋아해 ", "정말? ㅠㅠ"
    shown = augmenter.epoch_draws(prompt, completion, seed=3, epochs=4)
    assert shown == ["".join(augmenter.augment_pair(prompt, completion, random.Random(3 * 1000 + epoch)))
                     for epoch in range(4)]


def test_rows_with_synonyms_finds_a_group_word_in_prompt_or_answer(augmenter):
    import pandas as pd

    frame = pd.DataFrame({"input_data": ["나는 배고파", "안녕", "안녕"], "output_message": ["응", "노래 추천!", "반가워"]})
    assert list(augmenter.rows_with_synonyms(frame).index) == [0, 1]
