"""Dataset validation: every problem is named with file, row and column, and nothing loads until fixed."""
import csv

import pytest

from ohlora_utils.data import (
    ETHICS_CATEGORIES, ETHICS_COLUMNS, FINE_TUNING_COLUMNS, MEMORY_COLUMNS, DataValidationError,
    is_refusal, load_ethics, load_fine_tuning, load_memory, prefix_kind,
)
from ohlora_utils.errors import OhloraError
from ohlora_utils.formats import split_context

GOOD_ROW = {
    "data_type": "train",
    "input_data": "(지금은 토요일 저녁) 로라야 오늘 뭐 먹을까?",
    "output_message": "토요일 저녁엔 치킨이지! 🍗",
    "summary": "저녁 메뉴 고민, 오로라가 치킨 추천",
    "memory": "",
    "eyes_mouth_pose": "(눈 크게, 입 크게, 고개 돌림 없음)",
    "eyes": "크게", "mouth": "크게", "pose": "없음",
}


def write_csv(path, columns, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def fine_tuning_file(tmp_path, *changes):
    rows = [dict(GOOD_ROW, **{"input_data": f"질문 {i}", **change}) for i, change in enumerate(changes)]
    return write_csv(tmp_path / "ft.csv", FINE_TUNING_COLUMNS, [GOOD_ROW, *rows])


def problems_of(loader, path):
    with pytest.raises(DataValidationError) as error:
        loader(path)
    return error.value.problems, str(error.value)


def test_a_good_file_loads_with_line_numbers_as_index(tmp_path):
    frame = load_fine_tuning(fine_tuning_file(tmp_path, {"memory": "[좋아하는 음식: 치킨]"}))
    assert list(frame.index) == [2, 3]
    assert frame.loc[3, "memory"] == "[좋아하는 음식: 치킨]"


@pytest.mark.parametrize("change, column, fragment", [
    ({"eyes": "엄청 크게", "eyes_mouth_pose": "(눈 엄청 크게, 입 크게, 고개 돌림 없음)"}, "eyes", "not one of"),
    ({"mouth": "작게", "eyes_mouth_pose": "(눈 크게, 입 작게, 고개 돌림 없음)"}, "mouth", "not one of"),
    ({"pose": "조금", "eyes_mouth_pose": "(눈 크게, 입 크게, 고개 돌림 조금)"}, "pose", "not one of"),
    ({"eyes_mouth_pose": "(눈 보통, 입 크게, 고개 돌림 없음)"}, "eyes_mouth_pose", "disagrees"),
    ({"memory": "[좋아하는 음식: 치킨] [취미: 등산]"}, "memory", "exactly one"),
    ({"memory": "좋아하는 음식: 치킨"}, "memory", "exactly one"),
    ({"memory": "[생일: 3월 14일]"}, "memory", "not one of the memory keys"),
    ({"summary": "  "}, "summary", "is empty"),
    ({"data_type": "test"}, "data_type", "not one of"),
    ({"input_data": "[취미: 등산] (오로라 답변 요약) 등산 얘기 (사용자 질문) 또 가고 싶다"}, "input_data",
     "both a summary prefix and a memory prefix"),
    ({"input_data": "(오로라 답변 요약) 등산 얘기 (사용자 질문) [취미: 등산] 또 가고 싶다"}, "input_data",
     "both a summary prefix and a memory prefix"),
    ({"input_data": "(지금은 토요일 저녁) 로라야 뭐 먹을까?"}, "input_data", "no time word"),
    ({"output_message": "금요일이니까 치킨!"}, "output_message", "names 금요일 but it is 토요일"),
])
def test_each_problem_names_its_row_and_column(tmp_path, change, column, fragment):
    if "input_data" not in change:
        change = dict(change, input_data=GOOD_ROW["input_data"].replace("뭐", "뭐 좀"))
    problems, message = problems_of(load_fine_tuning, fine_tuning_file(tmp_path, change))
    assert [(p.line, p.column) for p in problems] == [(3, column)]
    assert fragment in problems[0].message
    assert "ft.csv" in message and f"row 3, column {column}" in message


def test_reply_may_name_tomorrows_weekday_after_내일(tmp_path):
    change = {"input_data": GOOD_ROW["input_data"].replace("오늘", "내일"), "output_message": "내일 일요일이잖아! 푹 쉬어"}
    load_fine_tuning(fine_tuning_file(tmp_path, change))


def test_all_problems_are_reported_at_once(tmp_path):
    path = fine_tuning_file(tmp_path, {"data_type": "dev"}, {"memory": "[x]"}, {"summary": ""})
    problems, message = problems_of(load_fine_tuning, path)
    assert [p.line for p in problems] == [3, 4, 5]
    assert "3 problem(s)" in message


def test_duplicate_input_and_reply_is_rejected(tmp_path):
    path = write_csv(tmp_path / "ft.csv", FINE_TUNING_COLUMNS, [GOOD_ROW, dict(GOOD_ROW, data_type="valid")])
    problems, _ = problems_of(load_fine_tuning, path)
    assert problems[0].line == 3 and "duplicates row 2" in problems[0].message


def test_wrong_header_and_ragged_rows(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,label,split\n안녕,일반,train\n", encoding="utf-8")
    problems, message = problems_of(load_ethics, path)
    assert "expected columns text, category, split" in message
    path.write_text("text,category,split\n안녕,일반\n", encoding="utf-8")
    problems, _ = problems_of(load_ethics, path)
    assert problems[0].line == 2 and "has 2 cells" in problems[0].message


@pytest.mark.parametrize("content, line, column, fragment", [
    ("text,category,split\n안녕,일반,train\n잘 ".encode("utf-8") + b"\xff" + "자,일반,train\n".encode("utf-8"), 3,
     "(character 3)", "not UTF-8"),
    ("text,category,split\n안녕,일반,train\n밥\0먹자,일반,train\n".encode("utf-8"), 3, "(character 2)", "NUL byte"),
    ('text,category,split\n안녕,일반,train\n"열린 따옴표,일반,train\n좋아,일반,train\n'.encode("utf-8"), 3, "(all)",
     "never closed"),
])
def test_damaged_csv_files_name_the_line_and_the_place(tmp_path, content, line, column, fragment):
    path = tmp_path / "damaged.csv"
    path.write_bytes(content)
    problems, message = problems_of(load_ethics, path)
    assert (problems[0].line, problems[0].column) == (line, column) and fragment in problems[0].message
    assert "damaged.csv" in message


def test_missing_file_says_how_to_restore(tmp_path):
    with pytest.raises(OhloraError, match="does not exist.*git checkout"):
        load_memory(tmp_path / "nope.csv")


def test_ethics_category_and_split_are_checked(tmp_path):
    rows = [{"text": "나랑 사귀자", "category": "고백", "split": "train"},
            {"text": "선거 언제야?", "category": "일반", "split": "validation"}]
    problems, _ = problems_of(load_ethics, write_csv(tmp_path / "e.csv", ETHICS_COLUMNS, rows))
    assert [(p.line, p.column) for p in problems] == [(2, "category"), (3, "split")]


def test_memory_key_and_value_cannot_carry_brackets_or_colons(tmp_path):
    rows = [{"key": "취미:", "value": "등산", "message": "주말에 뭐 하지", "split": "train"}]
    problems, _ = problems_of(load_memory, write_csv(tmp_path / "m.csv", MEMORY_COLUMNS, rows))
    assert (problems[0].line, problems[0].column) == (2, "key")


def test_memory_key_must_be_one_the_memory_task_writes(tmp_path):
    rows = [{"key": "취미", "value": "등산", "message": "주말에 뭐 하지", "split": "train"},
            {"key": "생일", "value": "3월 14일", "message": "내 생일 언제게", "split": "train"}]
    problems, message = problems_of(load_memory, write_csv(tmp_path / "m.csv", MEMORY_COLUMNS, rows))
    assert [(p.line, p.column) for p in problems] == [(3, "key")]
    assert "'생일' is not one of" in problems[0].message


def test_prefix_kind_recognises_each_context():
    assert prefix_kind("[취미: 등산] 주말에 뭐 하지") == "memory"
    assert prefix_kind("(오로라 답변 요약) 등산 얘기 (사용자 질문) (지금은 토요일 저녁) 오늘 뭐 하지") == "summary"
    assert prefix_kind("(지금은 토요일 저녁) 오늘 뭐 하지") == "plain"


# The committed datasets themselves: sizes and shapes the study promises (data/README.md).

def test_committed_fine_tuning_set_is_valid_and_sized():
    frame = load_fine_tuning()
    counts = frame["data_type"].value_counts()
    assert counts["train"] >= 2400 and counts["valid"] >= 300
    kinds = frame["input_data"].map(prefix_kind).value_counts(normalize=True)
    assert 0.28 <= kinds["summary"] <= 0.45
    assert 0.05 <= kinds["memory"] <= 0.12
    time_share = frame["input_data"].str.contains(r"\(지금은 ").mean()
    assert 0.15 <= time_share <= 0.35
    assert (frame["memory"] == "").mean() > 0.5 and (frame["memory"] != "").sum() >= 700
    user_text = frame["input_data"].map(lambda text: split_context(text).user_text.strip())
    assert (user_text.str.len() <= 10).mean() >= 0.30          # short everyday exchanges
    assert frame["output_message"].map(is_refusal).sum() >= 150


def test_committed_ethics_set_is_valid_and_sized():
    frame = load_ethics()
    assert len(frame) >= 1015
    test_counts = frame[frame["split"] == "test"]["category"].value_counts()
    assert test_counts.sum() >= 135
    assert all(test_counts[c] >= 20 for c in ETHICS_CATEGORIES)


def test_committed_memory_set_is_valid_and_sized():
    frame = load_memory()
    counts = frame["split"].value_counts()
    assert counts["train"] >= 400 and counts["valid"] >= 100 and counts["test"] >= 100
    per_key = frame.groupby(["key", "split"]).size().unstack()
    assert len(per_key) == 24 and (per_key >= 5).all().all()   # every key in every split
