"""Guarded inference: adapters side by side, stop at the marker, retry by the original's rules, fall back."""
import json

import pandas as pd
import pytest
import torch

from ohlora_utils.errors import OhloraError
from ohlora_utils.storage import write_manifest
from ohlora_utils.generation import (EndMarkerStop, Generation, MergedTaskModel, TaskModels, answer_batch,
                                     answer_requests, normalise, rejection_reasons)
from ohlora_utils.llm_metrics import LIST_START, character_f1, evaluate_tasks
from ohlora_utils.tasks import MEMORY_KEYS, TASK_NAMES, TASKS


@pytest.fixture(scope="module")
def llms(tiny_profile, tiny_adapters):
    root, _ = tiny_adapters
    return TaskModels.load(tiny_profile, adapters={task: root / task for task in TASK_NAMES})


def test_one_base_model_per_architecture_serves_its_tasks(llms):
    assert set(llms.tasks) == set(TASK_NAMES)
    assert llms.distinct_models() == 2  # tiny Llama (reply, summary) + tiny GPT-NeoX (memory, expression)
    assert llms.models["output_message"] is llms.models["summary"]
    assert llms.models["memory"] is llms.models["eyes_mouth_pose"]


def test_adapters_really_switch_per_task(llms, tiny_adapters):
    model, tokenizer = llms.models["output_message"], llms.tokenizers["output_message"]
    ids = tokenizer("로라야 안녕", return_tensors="pt")
    outputs = {}
    for task in ("output_message", "summary"):
        model.set_adapter(task)
        with torch.inference_mode():
            outputs[task] = model(**ids).logits
    assert not torch.allclose(outputs["output_message"], outputs["summary"])


def test_end_marker_stop_looks_only_at_generated_text(llms):
    tokenizer = llms.tokenizers["output_message"]
    prompt = tokenizer(["안녕 (답변 종료) 이건 프롬프트"], return_tensors="pt")["input_ids"]
    stop = EndMarkerStop(tokenizer, "(답변 종료)", prompt.shape[1])
    assert not stop(prompt, None).item()  # the marker inside the prompt does not count
    generated = tokenizer([" 응 좋아 (답변 종료)"], add_special_tokens=False, return_tensors="pt")["input_ids"]
    assert stop(torch.cat([prompt, generated], dim=1), None).item()


@pytest.mark.parametrize("task, text, ended, weekday, reason", [
    ("output_message", "", True, None, "empty"),
    ("output_message", "좋아!", False, None, "no end marker"),
    ("output_message", "응 (요약 시작) 그래", True, None, "contains a marker"),
    ("output_message", "여기 봐 http://x", True, None, "contains http"),
    ("output_message", "금요일 저녁이다!", True, "토요일", "wrong weekday"),
    ("eyes_mouth_pose", "(눈 커다랗게, 입 보통, 고개 돌림 없음)", True, None, "not an expression"),
])
def test_rejection_rules(task, text, ended, weekday, reason):
    assert reason in rejection_reasons(task, Generation(text, ended), weekday)


def test_valid_answers_are_accepted():
    assert rejection_reasons("output_message", Generation("토요일이니까 푹 쉬어!", True), "토요일") == []
    assert rejection_reasons("memory", Generation("", True)) == []  # "no memory" is an answer
    assert rejection_reasons("eyes_mouth_pose", Generation("(눈 크게, 입 보통, 고개 돌림 없음)", True)) == []


def test_memory_is_normalised_to_one_item():
    assert normalise("memory", "[좋아하는 음식:  떡볶이 ] [취미: 등산]") == "[좋아하는 음식: 떡볶이]"
    assert normalise("memory", "기억할 것 없음") is None


@pytest.mark.parametrize("answer, item", [("[취미:  ]", None), ("[ : 등산]", None), ("[취미:  ] [직업: 간호사]", "[직업: 간호사]")])
def test_a_memory_with_a_blank_key_or_value_is_nothing_to_remember(answer, item, tmp_path):
    from ohlora_utils.memory_store import MemoryStore

    assert normalise("memory", answer) == item
    if item:  # what normalise lets through, the store takes
        with MemoryStore(tmp_path / "m.sqlite") as store:
            assert store.add(item).status == "added"


class NeverEnding:
    """Task models whose every generation misses the end marker (what untrained adapters do)."""

    def __init__(self):
        self.calls = 0

    def generate_mixed(self, requests, seed=None, max_new_tokens=None):
        self.calls += 1
        return [Generation("끝나지 않는 말", False) for _ in requests]

    def empty_answer_probability(self, task, prompts):
        return [0.0] * len(prompts)   # a memory is always due: the memory rows generate too


def test_never_ending_generation_falls_back_after_the_tries():
    models = NeverEnding()
    answers = answer_batch(models, "output_message", ["p1", "p2"], seed=0, max_tries=2)
    assert [(a.text, a.tries, a.fell_back, len(a.problems)) for a in answers] == [("(읽씹)", 2, True, 2)] * 2
    assert models.calls == 2                       # both rows retried together, once per try
    expression = answer_batch(models, "eyes_mouth_pose", ["p"], seed=0, max_tries=3)[0]
    assert expression.fell_back and expression.tries == 3 and expression.text == "(눈 보통, 입 보통, 고개 돌림 없음)"
    memory = answer_batch(models, "memory", ["p"], seed=0, max_tries=1)[0]
    assert memory.fell_back and memory.text is None


def test_generation_budget_bounds_every_try(llms, monkeypatch):
    model, lengths = llms.models["summary"], []
    original = model.generate

    def counting_generate(**kwargs):
        output = original(**kwargs)
        lengths.append(output.shape[1] - kwargs["input_ids"].shape[1])
        return output

    monkeypatch.setattr(model, "generate", counting_generate)
    spec = TASKS["summary"]
    llms.generate("summary", [spec.prompt({"input_data": "안녕", "output_message": "안녕!"})], temperature=1.0,
                  seed=0, max_new_tokens=5)
    assert lengths == [5]  # the babbling tiny model never ends by itself: the budget stops it


@pytest.mark.parametrize("manifest", [True, False])
def test_a_damaged_adapter_is_a_clear_error_naming_its_folder(tiny_profile, tiny_adapters, tmp_path, manifest):
    import shutil

    root, _ = tiny_adapters
    for task in TASK_NAMES:
        shutil.copytree(root / task, tmp_path / task)
    if not manifest:   # an adapter saved before adapters had manifests: the library's error is translated
        (tmp_path / "memory" / "ohlora-manifest.json").unlink()
    weights = tmp_path / "memory" / "adapter_model.safetensors"
    weights.write_bytes(b"\0" * weights.stat().st_size)  # same size, nothing readable
    with pytest.raises(OhloraError, match=f"{tmp_path / 'memory'}.*(damaged|could not be loaded).*train it again"):
        TaskModels.load(tiny_profile, adapters={task: tmp_path / task for task in TASK_NAMES})


def test_adapter_trained_on_another_base_model_is_refused(tiny_profile, tiny_adapters, tmp_path):
    root, _ = tiny_adapters
    import shutil

    foreign = tmp_path / "memory"
    shutil.copytree(root / "memory", foreign)
    meta = json.loads((foreign / "ohlora-adapter.json").read_text())
    meta["base_model"] = "gemma-3-270m"
    (foreign / "ohlora-adapter.json").write_text(json.dumps(meta))
    write_manifest(foreign, kind="adapter")           # an intact adapter, only of another base model
    with pytest.raises(OhloraError, match="trained on gemma-3-270m.*runs memory on tiny-gpt-neox"):
        TaskModels.load(tiny_profile, adapters={"memory": foreign})


def test_missing_adapter_says_to_run_notebook_02(tiny_profile, tmp_path):
    with pytest.raises(OhloraError, match="no trained adapter.*notebook 02"):
        TaskModels.load(tiny_profile, adapters={"summary": tmp_path / "none"})


def test_metrics_table_covers_every_task(llms, small_frame):
    valid, train = small_frame[small_frame["data_type"] == "valid"].head(3), small_frame[small_frame["data_type"] == "train"]
    rows, table = evaluate_tasks(llms, valid, train, seed=0)
    assert set(table.index) == set(TASK_NAMES) and len(rows) == 12
    assert table["tries_per_answer"].between(1, 5).all()
    for column in ("starts_with_digit_or_list", "char_f1_with_gold", "exact_match", "parse_rate_first_try",
                   "pose_accuracy"):
        assert column in table.columns


def test_a_cached_evaluation_is_reused_with_the_same_metrics(llms, small_frame, tmp_path, monkeypatch):
    monkeypatch.setenv("OHLORA_ARTIFACTS_DIR", str(tmp_path))
    valid, train = small_frame[small_frame["data_type"] == "valid"].head(3), small_frame[small_frame["data_type"] == "train"]
    rows, table = evaluate_tasks(llms, valid, train, seed=0, tasks=["output_message", "eyes_mouth_pose"], cache=True)
    again_rows, again = evaluate_tasks(llms, valid, train, seed=0, tasks=["output_message", "eyes_mouth_pose"], cache=True)
    assert not table["answers_reused"].any() and again["answers_reused"].all()
    pd.testing.assert_frame_equal(again.drop(columns="answers_reused"), table.drop(columns="answers_reused"))
    assert again_rows["answer"].tolist() == rows["answer"].tolist()
    other_seed = evaluate_tasks(llms, valid, train, seed=1, tasks=["output_message"], cache=True)[1]
    assert not other_seed["answers_reused"].any()


def test_the_signature_names_the_adapter_and_how_the_model_was_loaded(llms):
    signature = llms.signature("summary")
    assert signature["adapter"] and len(signature["adapter"]) == 64
    assert signature["dtype"] == "torch.float32" and signature["merged"] is False and signature["output_rows"] > 0


def test_metric_helpers():
    assert character_f1("떡볶이 추천", "떡볶이 추천") == 1.0
    assert character_f1("abc", "xyz") == 0.0
    assert 0 < character_f1("점심 떡볶이", "저녁 떡볶이") < 1
    assert LIST_START.match("1. 첫째") and LIST_START.match("- 항목") and not LIST_START.match("오늘은 좋아")


def test_mixed_batch_routes_each_row_to_its_own_adapter(llms):
    """Nearly greedy rows: a task's row in a mixed batch equals the same row generated alone."""
    prompt = "로라야 오늘 뭐 해?"
    mixed = llms.generate_mixed([("output_message", prompt, 1e-6), ("summary", prompt, 1e-6)], seed=0,
                                max_new_tokens=6)
    alone = [llms.generate_mixed([(task, prompt, 1e-6)], seed=0, max_new_tokens=6)[0]
             for task in ("output_message", "summary")]
    assert [g.text for g in mixed] == [g.text for g in alone]


def test_evaluation_rows_take_the_presets_number_of_valid_rows(small_frame):
    from ohlora_utils.llm_metrics import EVAL_ROWS, evaluation_rows

    valid, train = evaluation_rows(small_frame, "quick")
    assert len(valid) == min(EVAL_ROWS["quick"], (small_frame["data_type"] == "valid").sum())
    assert set(valid["data_type"]) == {"valid"} and set(train["data_type"]) == {"train"}
    assert len(evaluation_rows(small_frame, "quick", limit=2)[0]) == 2


def test_the_token_table_counts_each_tasks_prompt_on_its_base_model(tiny_profile):
    from ohlora_utils.llm_metrics import prompt_token_table

    table = prompt_token_table(tiny_profile, {"input_data": "안녕", "output_message": "반가워!", "summary": "인사",
                                              "memory": "", "eyes_mouth_pose": "(눈 보통, 입 보통, 고개 돌림 없음)"})
    assert sorted(table["task"]) == sorted(TASK_NAMES) and table["prompt tokens"].gt(0).all()


@pytest.fixture(scope="module")
def merged_llms(tiny_profile, tiny_adapters):
    root, _ = tiny_adapters
    return TaskModels.load(tiny_profile, adapters={task: root / task for task in TASK_NAMES},
                           merged=("output_message",))


def test_the_merged_copy_computes_what_the_adapter_on_the_shared_base_computes(merged_llms):
    model, tokenizer = merged_llms.models["output_message"], merged_llms.tokenizers["output_message"]
    ids = tokenizer(TASKS["output_message"].prompt({"input_data": "로라야 안녕"}), return_tensors="pt")
    model.set_adapter("output_message")
    with torch.inference_mode():
        shared = model(**ids).logits
        merged = merged_llms.merged["output_message"].model(**ids).logits
    assert torch.allclose(shared, merged, atol=1e-4)
    assert merged_llms.merged["output_message"].model is not model.get_base_model()   # a copy: the base is intact


def test_the_merged_loop_is_seeded_counts_its_tokens_and_respects_the_budget(merged_llms):
    copy = merged_llms.merged["output_message"]
    prompt = TASKS["output_message"].prompt({"input_data": "오늘 뭐 먹지?"})
    first, again = copy.generate(prompt, 0.6, seed=3), copy.generate(prompt, 0.6, seed=3)
    assert first == again and 0 < first.tokens <= TASKS["output_message"].max_new_tokens
    short = copy.generate(prompt, 0.6, seed=3, max_new_tokens=2)
    assert short.tokens <= 2 and not short.ended   # the tiny model never reaches the marker in two tokens


def test_at_a_tiny_temperature_the_merged_loop_picks_the_most_likely_token(merged_llms):
    copy = merged_llms.merged["output_message"]
    prompt = TASKS["output_message"].prompt({"input_data": "오늘 뭐 먹지?"})
    with torch.inference_mode():
        expected = int(copy.model(copy.tokenizer(prompt, return_tensors="pt")["input_ids"]).logits[0, -1].argmax())
    generation = copy.generate(prompt, 1e-4, seed=0, max_new_tokens=1)
    if expected in copy.stop_ids:
        assert generation.tokens == 0
    else:
        assert generation.tokens == 1
        assert generation.text == copy.tokenizer.decode([expected], skip_special_tokens=True).strip()


def test_rows_go_to_merged_copies_only_when_every_row_of_the_batch_has_one(merged_llms, monkeypatch):
    routed = []
    original = MergedTaskModel.generate

    def recording(self, prompt, temperature, seed=None, max_new_tokens=None, decoding=None):
        routed.append(prompt)
        return original(self, prompt, temperature, seed, max_new_tokens)

    monkeypatch.setattr(MergedTaskModel, "generate", recording)
    reply = TASKS["output_message"].prompt({"input_data": "안녕"})
    memory = TASKS["memory"].prompt({"input_data": "안녕"})
    merged_llms.generate_mixed([("output_message", reply, 0.6)], seed=0)
    assert routed == [reply]
    merged_llms.generate_mixed([("output_message", reply, 0.6), ("summary", reply, 0.6)], seed=0)
    merged_llms.generate_mixed([("memory", memory, 0.6)], seed=0)
    assert routed == [reply]                       # a task without a copy keeps its rows on the shared base
    merged_llms.generate_mixed([("output_message", reply, 0.6), ("output_message", memory, 0.6)], seed=0)
    assert routed == [reply, reply, memory]        # all rows have a copy: one after another, in order


def test_every_task_can_have_its_copy_and_the_copies_share_one_embedding_table(tiny_profile, tiny_adapters):
    root, _ = tiny_adapters
    llms = TaskModels.load(tiny_profile, adapters={task: root / task for task in TASK_NAMES}, merged=TASK_NAMES)
    assert set(llms.merged) == set(TASK_NAMES)
    by_base = {}
    for task, copy in llms.merged.items():
        by_base.setdefault(tiny_profile.llm_for(task).key, []).append(copy.model.get_input_embeddings())
    for tables in by_base.values():
        assert all(table is tables[0] for table in tables)
    prompt = TASKS["summary"].prompt({"input_data": "안녕", "output_message": "반가워!"})
    ids = llms.tokenizers["summary"](prompt, return_tensors="pt")
    model = llms.models["summary"]
    model.set_adapter("summary")
    with torch.inference_mode():     # each copy still computes its own adapter, not another task's
        assert torch.allclose(model(**ids).logits, llms.merged["summary"].model(**ids).logits, atol=1e-4)
    requests = [("memory", TASKS["memory"].prompt({"input_data": "나 고양이 키워"}), 0.6),
                ("summary", prompt, 0.6), ("eyes_mouth_pose", TASKS["eyes_mouth_pose"].prompt({"output_message": "반가워!"}), 1.0)]
    first, again = llms.generate_mixed(requests, seed=5), llms.generate_mixed(requests, seed=5)
    assert first == again and len(first) == 3   # seeded row by row


def test_merging_a_task_without_an_adapter_is_a_clear_error(tiny_profile, tiny_adapters):
    root, _ = tiny_adapters
    with pytest.raises(OhloraError, match="cannot merge"):
        TaskModels.load(tiny_profile, tasks=["memory"], adapters={"memory": root / "memory"}, merged=("output_message",))


def test_completion_log_likelihood_is_the_mean_token_log_probability_of_the_adapter(llms):
    """Equal to a plain forward pass over prompt + completion, one row at a time (padding changes nothing)."""
    prompts, completions = ["로라야 안녕", "오늘 뭐 먹지 배고파"], [" 안녕! (답변 종료)", " 김밥 어때? (답변 종료)"]
    scores = llms.completion_log_likelihood("output_message", prompts, completions)
    model, tokenizer = llms.models["output_message"], llms.tokenizers["output_message"]
    model.set_adapter("output_message")
    for prompt, completion, score in zip(prompts, completions, scores):
        p, c = tokenizer(prompt)["input_ids"], tokenizer(completion, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([p + c])).logits[0].float().log_softmax(-1)
        expected = sum(logits[len(p) - 1 + i, token].item() for i, token in enumerate(c)) / len(c)
        assert score == pytest.approx(expected, abs=1e-4)
    assert all(score < 0 for score in scores)


def test_empty_answer_probability_is_the_probability_of_the_end_marker_alone(llms):
    prompts = ["나 간호사로 일해 (요약 시작) ### 답변:", "ㅋㅋㅋ (요약 시작) ### 답변:"]
    probabilities = llms.empty_answer_probability("memory", prompts)
    totals = llms.completion_log_likelihood("memory", prompts, [" (요약 종료)"] * 2, total=True)
    means = llms.completion_log_likelihood("memory", prompts, [" (요약 종료)"] * 2)
    tokens = len(llms.tokenizers["memory"](" (요약 종료)", add_special_tokens=False)["input_ids"])
    assert probabilities == pytest.approx([float(torch.tensor(t).exp()) for t in totals])
    assert totals == pytest.approx([m * tokens for m in means], abs=1e-4)
    assert all(0 < p < 1 for p in probabilities)


def test_option_log_likelihoods_equal_each_options_total_completion_log_likelihood(llms):
    """One pass over the prompt, its cache shared by every option: the same figures as scoring each option
    after the whole prompt (options of different lengths, both tiny architectures)."""
    prompt, options = "나 간호사로 일해 (요약 시작) ### 답변:", [" [직업:", " [좋아하는 음식:", " [오로라에 대한 감정:"]
    for task in ("memory", "output_message"):
        cached = llms.option_log_likelihoods(task, prompt, options)
        plain = llms.completion_log_likelihood(task, [prompt] * len(options), options, total=True)
        assert cached == pytest.approx(plain, abs=1e-4)
    assert llms.option_log_likelihoods("memory", prompt, []) == []
    with pytest.raises(OhloraError, match="empty"):
        llms.option_log_likelihoods("memory", prompt, [" [직업:", ""])


def test_a_memory_answer_can_open_with_the_likeliest_of_the_data_keys(llms):
    prompt = "나 간호사로 일해 (요약 시작) ### 답변:"
    [answer] = answer_requests(llms, [("memory", prompt, None)], empty_gates={"memory": float("inf")}, choose_keys=True)
    scores = llms.option_log_likelihoods("memory", prompt, [f" [{key}:" for key in MEMORY_KEYS])
    likeliest = MEMORY_KEYS[scores.index(max(scores))]
    assert answer.attempts[0].startswith(f"[{likeliest}: ")
    assert answer.text is None or answer.text.startswith(f"[{likeliest}: ")


class Gated:
    """Task models with a scripted probability of "nothing to remember" per prompt; they record what they
    were asked to generate and answer ``직업: 간호사]`` after the opening ``[`` (the rest of an item), or
    ``간호사]`` after a key's colon; 직업 is their likeliest key."""

    def __init__(self, empty: dict[str, float]):
        self.empty, self.prompts = empty, []

    def empty_answer_probability(self, task, prompts):
        return [self.empty[prompt] for prompt in prompts]

    def option_log_likelihoods(self, task, prompt, options):
        return [-1.0 if option == " [직업:" else -5.0 for option in options]

    def generate_mixed(self, requests, seed=None, max_new_tokens=None):
        self.prompts += [prompt for _, prompt, _ in requests]
        return [Generation(("간호사]" if prompt.endswith(":") else "직업: 간호사]") if task == "memory" else "응 좋아", True)
                for task, prompt, _ in requests]


def test_the_memory_gate_saves_only_where_a_memory_is_likelier_and_then_never_samples_nothing():
    gate = TASKS["memory"].empty_gate
    models = Gated({"간호사야": gate - 0.01, "ㅋㅋ": gate})
    requests = [("memory", "간호사야", None), ("memory", "ㅋㅋ", None), ("output_message", "ㅋㅋ", None)]
    saved, nothing, reply = answer_requests(models, requests)
    assert saved.text == "[직업: 간호사]" and saved.attempts == ["[직업: 간호사]"]
    assert nothing.text is None and nothing.tries == 1 and not nothing.fell_back
    assert reply.text == "응 좋아"
    # the likely-empty row is never generated; the other is generated after its opening, the reply as it is
    assert models.prompts == ["간호사야 [", "ㅋㅋ"]


def test_a_gate_can_be_lifted_or_forced_per_call():
    models = Gated({"ㅋㅋ": 0.99})
    [sampled] = answer_requests(models, [("memory", "ㅋㅋ", None)], empty_gates={"memory": None})
    [forced] = answer_requests(models, [("memory", "ㅋㅋ", None)], empty_gates={"memory": float("inf")})
    assert models.prompts == ["ㅋㅋ", "ㅋㅋ ["]
    assert sampled.text is None and forced.text == "[직업: 간호사]"   # "직업: 간호사]" alone is no item


def test_the_key_can_be_chosen_before_the_value_is_sampled():
    models = Gated({"간호사야": 0.1})
    [answer] = answer_requests(models, [("memory", "간호사야", None)], choose_keys=True)
    assert models.prompts == ["간호사야 [직업:"]   # the opening and the likeliest key; only the value is drawn
    assert answer.text == "[직업: 간호사]" and answer.attempts == ["[직업: 간호사]"]


def test_completion_log_likelihood_refuses_mismatched_or_unknown_input(llms):
    with pytest.raises(OhloraError, match="completions"):
        llms.completion_log_likelihood("output_message", ["a", "b"], ["c"])
    with pytest.raises(OhloraError, match="no adapter"):
        llms.completion_log_likelihood("nope", ["a"], ["b"])


def test_response_selection_reuses_its_cached_ranks(llms, small_frame, tmp_path, monkeypatch):
    from ohlora_utils.llm_metrics import response_selection

    monkeypatch.setenv("OHLORA_ARTIFACTS_DIR", str(tmp_path))
    valid = small_frame[small_frame["data_type"] == "valid"]
    ranks, summary = response_selection(llms, valid, candidates=4, seed=0, cache=True)
    again, summary_again = response_selection(llms, valid, candidates=4, seed=0, cache=True)
    assert (summary["reused"], summary_again["reused"]) == (False, True)
    assert again["rank"].tolist() == ranks["rank"].tolist() and summary_again["top1"] == summary["top1"]


def test_response_selection_ranks_every_row_among_the_candidates(llms, small_frame):
    from ohlora_utils.llm_metrics import response_selection

    valid = small_frame[small_frame["data_type"] == "valid"]
    ranks, summary = response_selection(llms, valid, candidates=4, seed=0)
    assert len(ranks) == len(valid) and ranks["rank"].between(1, 4).all()
    assert summary["chance"] == 0.25 and 0 <= summary["top1"] <= 1 and summary["mrr"] >= summary["top1"]
    assert response_selection(llms, valid, candidates=4, seed=0)[0].equals(ranks)   # seeded
    assert not summary["reused"]
    with pytest.raises(ValueError, match="needs"):
        response_selection(llms, valid.head(2), candidates=4)


def test_an_int8_linear_computes_the_linear_within_its_rounding():
    from ohlora_utils.generation import Int8Linear

    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    quantised, x = Int8Linear(linear), torch.randn(3, 5, 64)
    expected, got = linear(x), quantised(x)
    assert got.shape == expected.shape and quantised.weight_int8.dtype == torch.int8
    # each weight is off by at most half a step (scale / 2): the error is a small share of the output's size
    assert (got - expected).abs().max() < 0.02 * expected.abs().max()


def test_the_int8_merged_copy_stays_close_to_the_adapter_and_swaps_every_backbone_linear(tiny_profile, tiny_adapters):
    root, _ = tiny_adapters
    llms = TaskModels.load(tiny_profile, adapters={"output_message": root / "output_message"},
                           merged=("output_message",), merged_int8=True)
    copy = llms.merged["output_message"]
    from ohlora_utils.generation import Int8Linear
    decoder = copy.model.get_decoder()
    assert not any(isinstance(m, torch.nn.Linear) for m in decoder.modules())
    assert any(isinstance(m, Int8Linear) for m in decoder.modules())
    ids = copy.tokenizer(TASKS["output_message"].prompt({"input_data": "로라야 안녕"}), return_tensors="pt")
    model = llms.models["output_message"]
    model.set_adapter("output_message")
    with torch.inference_mode():
        shared, merged = model(**ids).logits[0, -1], copy.model(**ids).logits[0, -1]
    assert torch.corrcoef(torch.stack([shared, merged]))[0, 1] > 0.99
    assert copy.generate(TASKS["output_message"].prompt({"input_data": "배고파"}), 0.6, seed=0).tokens > 0


def test_without_the_int8_kernel_quantising_is_a_clear_error(monkeypatch):
    from ohlora_utils import generation

    monkeypatch.setattr(generation, "INT8_MATMUL", None)
    with pytest.raises(OhloraError, match="int8"):
        generation.quantise_linears_int8(torch.nn.Sequential(torch.nn.Linear(4, 4)))


def test_both_paths_draw_only_what_the_tasks_decoding_allows(merged_llms):
    """top-k 1 leaves only the most likely token at every step: the merged loop and ``generate`` over the
    adapter then write the same greedy text, whatever the seed. (min-p 0.999 was used here until a tiny model
    built from new data had two tokens within 0.1 % of each other: both then survive, and the seed decides.)"""
    from ohlora_utils.decoding import Decoding

    prompt = TASKS["output_message"].prompt({"input_data": "오늘 뭐 먹지?"})
    merged_llms.decodings["output_message"] = Decoding(top_k=1)
    try:
        merged = [merged_llms.merged["output_message"].generate(prompt, 1.0, seed, 6, Decoding(top_k=1))
                  for seed in (0, 1)]
        shared = [merged_llms._generate_rows([("output_message", prompt, 1.0)], seed, 6)[0] for seed in (0, 1)]
    finally:
        merged_llms.decodings["output_message"] = TASKS["output_message"].decoding
    assert merged[0] == merged[1] and shared[0] == shared[1]
    assert merged[0].text == shared[0].text


def test_a_first_try_temperature_other_than_the_tasks_reaches_the_models():
    class Recording:
        def __init__(self):
            self.temperatures = []

        def generate_mixed(self, requests, seed=None, max_new_tokens=None):
            self.temperatures += [temperature for _, _, temperature in requests]
            return [Generation("응 좋아", True) for _ in requests]

    models = Recording()
    answer_requests(models, [("output_message", "p", None), ("summary", "q", None)], temperatures={"output_message": 0.3})
    assert models.temperatures == [0.3, TASKS["summary"].temperature]


def test_int8_merged_copies_are_used_only_where_the_cpu_runs_the_int8_kernel_vectorised():
    from ohlora_utils import generation

    if generation.INT8_MATMUL is None or generation.compute_device() != "cpu":
        pytest.skip("this torch or device has no CPU int8 kernel to choose")
    assert generation.int8_merged_available("AVX512") and generation.int8_merged_available("AVX512_BF16")
    assert not generation.int8_merged_available("AVX2") and not generation.int8_merged_available("DEFAULT")
