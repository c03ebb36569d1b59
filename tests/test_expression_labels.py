"""The labelling guide as code: each part takes the first rule whose cue the reply contains."""
import pytest

from ohlora_utils.expression_labels import label_expression, relabel_rows
from ohlora_utils.formats import EYES_LABELS, MOUTH_LABELS, POSE_LABELS


@pytest.mark.parametrize("reply, expected", [
    ("헐 진짜?! 합격이라니 대박이다 🎉", ("아주 크게", "아주 크게", "보통")),
    ("오 고양이 이름이 나비야? 너무 귀엽다 😊", ("크게", "크게", "보통")),
    ("많이 피곤했겠다 ㅠㅠ 오늘은 일찍 푹 쉬어", ("작게", "보통", "없음")),
    ("에이 미안, 그건 좀 부담스러워 😅 대신 얘기는 계속하자!", ("작게", "보통", "많이")),
    ("미안, 그 질문엔 답하기 어려워. 다른 얘기 하자", ("작게", "보통", "없음")),
    ("점심은 김밥 어때? 간단하게 먹기 좋아", ("보통", "보통", "보통")),
    ("ㅋㅋ 그 말 들으니까 나도 배고파진다 😋", ("보통", "크게", "보통")),
])
def test_the_guides_worked_examples(reply, expected):
    assert label_expression(reply) == expected


def test_start_cues_count_only_at_the_start_of_the_reply():
    assert label_expression("와 벌써 다 했어?")[0] == "크게"
    assert label_expression("얼른 씻고 와")[0] == "보통"           # 와 here is "come", not surprise
    assert label_expression("오오 멋지다")[0] == "크게"
    assert label_expression("오래 걸렸네")[0] == "보통" and label_expression("오빠한테 물어봐")[0] == "보통"


def test_earlier_rules_win():
    assert label_expression("헐 ㅠㅠ 많이 아팠겠다")[0] == "아주 크게"   # 헐 (rule 1) before ㅠ (rule 3)
    assert label_expression("ㅋㅋㅋ 좋아!")[1] == "아주 크게"           # ㅋㅋㅋ before ㅋㅋ / 좋아!


def test_labels_are_always_in_their_sets():
    for reply in ("", "🙂", "a" * 500, "헐 ㅋㅋㅋ 미안 😅"):
        eyes, mouth, pose = label_expression(reply)
        assert eyes in EYES_LABELS and mouth in MOUTH_LABELS and pose in POSE_LABELS


def test_relabelling_rows_sets_all_four_columns_and_counts_the_changes():
    rows = [{"output_message": "헐 대박!", "eyes": "보통", "mouth": "보통", "pose": "보통", "eyes_mouth_pose": ""},
            {"output_message": "김밥 어때?", "eyes": "보통", "mouth": "보통", "pose": "보통",
             "eyes_mouth_pose": "(눈 보통, 입 보통, 고개 돌림 보통)"}]
    assert relabel_rows(rows) == 1
    assert rows[0]["eyes"] == "아주 크게" and rows[0]["eyes_mouth_pose"] == "(눈 아주 크게, 입 보통, 고개 돌림 보통)"


def test_every_committed_fine_tuning_row_follows_the_guide():
    from ohlora_utils.data import load_fine_tuning

    frame = load_fine_tuning()
    labelled = frame["output_message"].map(label_expression)
    off = frame[[tuple(row) != label for row, label in zip(frame[["eyes", "mouth", "pose"]].values, labelled)]]
    assert off.empty, f"rows {list(off.index[:10])} disagree with the guide: run python -m ohlora_utils.expression_labels"
