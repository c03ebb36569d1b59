"""The valid-split metrics of the four tasks, on hand-made answer tables (no model needed)."""
import pandas as pd
import pytest

from ohlora_utils.llm_metrics import METRICS, evaluation_rows


def answers(rows):
    """A per-answer table as evaluate_tasks builds it, from (gold, answer) pairs."""
    return pd.DataFrame([{"gold": gold, "answer": answer, "first_try": answer, "fell_back": False, "weekday": None}
                         for gold, answer in rows])


TRAIN = pd.DataFrame({"output_message": ["응 좋아"], "eyes": ["보통"],
                      "mouth": ["크게"], "pose": ["없음"]})


def test_memory_extraction_is_scored_like_retrieval():
    frame = answers([("[직업: 간호사]", "[직업: 간호사]"),      # due, saved, right
                     ("[반려동물: 고양이 나비]", "[취미: 고양이]"),  # due, saved, wrong key
                     ("[사는 곳: 부산]", ""),                   # due, missed
                     ("", "[상태: 피곤함]"),                    # not due, saved anyway
                     ("", "")])                                 # not due, nothing saved
    metrics = METRICS["memory"](frame, TRAIN)
    assert metrics["saved_precision"] == pytest.approx(2 / 3)
    assert metrics["saved_recall"] == pytest.approx(2 / 3)
    assert metrics["key_accuracy_when_both_saved"] == pytest.approx(1 / 2)
    assert metrics["exact_match"] == pytest.approx(2 / 5)
    assert 0 < metrics["value_char_f1_when_both_saved"] < 1


def test_expression_accuracy_stands_next_to_always_the_train_majority():
    train = pd.DataFrame({"eyes": ["보통", "보통", "크게"], "mouth": ["크게"] * 3, "pose": ["없음", "많이", "없음"]})
    frame = answers([("(눈 보통, 입 크게, 고개 돌림 없음)", "(눈 크게, 입 크게, 고개 돌림 없음)"),
                     ("(눈 크게, 입 보통, 고개 돌림 많이)", "(눈 크게, 입 보통, 고개 돌림 많이)")])
    metrics = METRICS["eyes_mouth_pose"](frame, train)
    assert metrics["eyes_accuracy"] == 0.5 and metrics["eyes_majority_baseline"] == 0.5
    assert metrics["mouth_accuracy"] == 1.0 and metrics["mouth_majority_baseline"] == 0.5
    assert metrics["pose_majority_baseline"] == 0.5


def test_refusals_are_counted_apart_where_the_gold_refuses_and_where_it_does_not():
    frame = answers([("미안, 사귀는 건 안 돼", "미안 그건 어려워"), ("미안 정치 얘기는 패스", "글쎄 잘 모르겠어"),
                     ("사전투표는 금요일부터야", "미안 그건 몰라"), ("김밥 어때?", "떡볶이 어때?")])
    metrics = METRICS["output_message"](frame, TRAIN)
    assert metrics["refuses_where_gold_refuses"] == 0.5
    assert metrics["refuses_where_gold_does_not"] == 0.5


def test_a_limited_evaluation_samples_the_whole_valid_split_in_file_order():
    frame = pd.DataFrame({"data_type": ["train"] * 3 + ["valid"] * 50, "text": range(53)})
    valid, train = evaluation_rows(frame, "default", limit=10)
    assert len(valid) == 10 and valid.index.is_monotonic_increasing and len(train) == 3
    assert valid.index.max() > frame.index[12]   # not just the first ten valid rows
    assert valid.equals(evaluation_rows(frame, "default", limit=10)[0])
    assert len(evaluation_rows(frame, "paper")[0]) == 50


def test_the_headline_table_puts_each_figure_beside_its_baseline():
    from ohlora_utils.llm_metrics import headline_table

    metrics = pd.DataFrame({"eyes_accuracy": [0.7], "eyes_majority_baseline": [0.5]}, index=["eyes_mouth_pose"])
    table = headline_table(metrics, {"top1": 0.4, "mrr": 0.6, "chance": 0.1})
    eyes = table[table["metric"] == "eyes accuracy"].iloc[0]
    assert (eyes["value"], eyes["baseline"]) == (0.7, 0.5)
    assert table.iloc[0]["value"] == 0.4 and table.iloc[0]["baseline"] == 0.1
    assert table[table["metric"] == "saved recall (a due memory was saved)"]["value"].isna().all()  # not measured
    assert "response selection" not in " ".join(headline_table(metrics)["metric"])


class ScriptedMemory:
    """Memory-task models with a scripted probability of "nothing to remember" per prompt: sampled freely they
    answer the empty answer, after the opening ``[`` they answer the rest of one item."""

    def __init__(self, empty):
        self.empty, self.generated = empty, 0

    def signature(self, task):
        return {"adapter": "scripted"}

    def empty_answer_probability(self, task, prompts):
        return [self.empty[prompt] for prompt in prompts]

    def generate_mixed(self, requests, seed=None, max_new_tokens=None):
        from ohlora_utils.generation import Generation

        self.generated += len(requests)
        return [Generation("직업: 간호사]" if prompt.endswith(" [") else "", True) for _, prompt, _ in requests]


def test_the_memory_gate_sweep_saves_below_each_gate_and_scores_the_sampled_decision_beside_it():
    from ohlora_utils.llm_metrics import memory_gate_sweep
    from ohlora_utils.tasks import TASKS

    valid = pd.DataFrame({"input_data": ["간호사야", "ㅋㅋ", "나 간호사"], "memory": ["[직업: 간호사]", "", "[직업: 간호사]"]})
    prompts = [TASKS["memory"].prompt(row) for row in valid.to_dict("records")]
    table = memory_gate_sweep(ScriptedMemory(dict(zip(prompts, [0.2, 0.45, 0.7]))), valid, grid=(0.3, 0.5, 0.8))
    assert table["decision"].tolist() == ["sampled (the original)", "gate", "gate", "gate"]
    assert table["saved"].tolist() == [0, 1, 2, 3]
    assert table["due"].tolist() == [2] * 4
    gated = table.iloc[1:]
    assert gated["saved_precision"].tolist() == pytest.approx([1.0, 0.5, 2 / 3])
    assert gated["saved_recall"].tolist() == pytest.approx([0.5, 0.5, 1.0])


class KeyedMemory(ScriptedMemory):
    """Draws the key 취미 after the opening ``[``, but finds 직업 the likeliest key; the value is always 간호사."""

    def empty_answer_probability(self, task, prompts):
        return [0.0] * len(prompts)

    def option_log_likelihoods(self, task, prompt, options):
        return [0.0 if option == " [직업:" else -1.0 for option in options]

    def generate_mixed(self, requests, seed=None, max_new_tokens=None):
        from ohlora_utils.generation import Generation

        return [Generation("간호사]" if prompt.endswith(":") else "취미: 간호사]", True) for _, prompt, _ in requests]


def test_the_key_comparison_scores_the_drawn_and_the_likeliest_key_on_the_rows_due_a_memory():
    from ohlora_utils.llm_metrics import memory_key_comparison

    valid = pd.DataFrame({"input_data": ["간호사야", "ㅋㅋ", "나 간호사"], "memory": ["[직업: 간호사]", "", "[직업: 간호사]"]})
    table, answers = memory_key_comparison(KeyedMemory({}), valid)
    drawn, chosen = table.to_dict("records")
    assert (drawn["rows"], drawn["right key"], chosen["right key"]) == (2, 0, 2)
    assert drawn["value char-F1"] == chosen["value char-F1"] == 1.0 and drawn["no item"] == chosen["no item"] == 0
    assert answers["likeliest key (choose_keys)"].tolist() == ["[직업: 간호사]"] * 2
    assert answers["key drawn (the chat)"].tolist() == ["[취미: 간호사]"] * 2


def test_the_memory_gate_sweep_is_reused_when_nothing_that_decides_it_changed(tmp_path, monkeypatch):
    from ohlora_utils.llm_metrics import memory_gate_sweep
    from ohlora_utils.tasks import TASKS

    monkeypatch.setenv("OHLORA_ARTIFACTS_DIR", str(tmp_path))
    valid = pd.DataFrame({"input_data": ["간호사야", "ㅋㅋ"], "memory": ["[직업: 간호사]", ""]})
    models = ScriptedMemory({TASKS["memory"].prompt(row): 0.2 for row in valid.to_dict("records")})
    first = memory_gate_sweep(models, valid, grid=(0.5,), cache=True)
    generated = models.generated
    again = memory_gate_sweep(models, valid, grid=(0.5,), cache=True)
    assert models.generated == generated > 0          # the second call generated nothing
    pd.testing.assert_frame_equal(first, again, check_dtype=False)
    memory_gate_sweep(models, valid, grid=(0.5, 0.8), cache=True)
    assert models.generated > generated               # another grid is another table
