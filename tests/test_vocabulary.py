"""The restricted output layer: exact logits for the kept tokens, -inf for the rest, sampling stays inside."""
import pytest
import torch

from ohlora_utils.errors import OhloraError
from ohlora_utils.formats import parse_expression
from ohlora_utils.generation import TaskModels, answer_batch
from ohlora_utils.models import load_causal_lm
from ohlora_utils.profiles import TINY_LLAMA, TINY_NEOX
from ohlora_utils.tasks import TASK_NAMES, all_markers
from ohlora_utils.vocabulary import RestrictedOutputLayer, allowed_piece, restrict_output_layer, study_token_ids


@pytest.mark.parametrize("text, allowed", [
    ("사랑", True), ("ㅋㅋ", True), ("🍗", True), ("!?", True), ("12,000", True), (" 오늘", True),
    ("def", False), ("日本", False), ("Привет", False), ("오늘abc", False),
])
def test_allowed_pieces_are_korean_emoji_digits_and_punctuation(text, allowed):
    assert allowed_piece(text) is allowed


@pytest.mark.parametrize("source", [TINY_LLAMA, TINY_NEOX], ids=lambda s: s.architecture)
def test_kept_tokens_get_the_full_layers_logits_and_the_others_minus_infinity(tiny_profile, source):
    model, tokenizer = load_causal_lm(source)
    ids = tokenizer(["로라야 오늘 뭐 해?", "떡볶이 먹자"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        full = model(**ids).logits
    keep = torch.arange(0, full.shape[-1], 3)
    restrict_output_layer(model, keep)
    with torch.inference_mode():
        restricted = model(**ids).logits
    assert restricted.shape == full.shape
    torch.testing.assert_close(restricted[..., keep], full[..., keep])
    dropped = torch.ones(full.shape[-1], dtype=torch.bool)
    dropped[keep] = False
    assert torch.isneginf(restricted[..., dropped]).all()


def test_sampling_never_leaves_the_kept_tokens(tiny_profile):
    model, tokenizer = load_causal_lm(TINY_LLAMA)
    keep = torch.tensor(sorted(set(range(0, len(tokenizer), 2)) | {tokenizer.eos_token_id}))
    restrict_output_layer(model, keep)
    prompt = tokenizer("로라야 안녕", return_tensors="pt")
    torch.manual_seed(0)
    with torch.inference_mode():
        output = model.generate(**prompt, do_sample=True, temperature=1.5, max_new_tokens=40,
                                pad_token_id=tokenizer.eos_token_id)
    generated = output[0, prompt["input_ids"].shape[1]:]
    assert len(generated) > 0 and torch.isin(generated, keep).all()


def test_the_study_vocabulary_keeps_every_marker_and_special_token(tiny_profile):
    _, tokenizer = load_causal_lm(TINY_LLAMA)
    keep = set(study_token_ids(tokenizer).tolist())
    assert set(tokenizer.all_special_ids) <= keep
    for marker in all_markers():
        assert set(tokenizer(marker, add_special_tokens=False)["input_ids"]) <= keep, marker


def test_ids_that_do_not_fit_the_model_are_a_clear_error(tiny_profile):
    model, tokenizer = load_causal_lm(TINY_LLAMA)
    with pytest.raises(OhloraError, match="do not fit"):
        restrict_output_layer(model, torch.tensor([len(tokenizer) + 10_000]))


def test_restricting_twice_keeps_the_first_layer(tiny_profile):
    model, _ = load_causal_lm(TINY_LLAMA)
    first = restrict_output_layer(model, torch.arange(10))
    assert isinstance(first, RestrictedOutputLayer)
    assert restrict_output_layer(model, torch.arange(5)) is first


def test_guarded_answers_run_on_restricted_task_models(tiny_profile, tiny_adapters):
    root, _ = tiny_adapters
    llms = TaskModels.load(tiny_profile, adapters={task: root / task for task in TASK_NAMES},
                           restrict_vocabulary=True)
    assert all(isinstance(model.get_base_model().get_output_embeddings(), RestrictedOutputLayer)
               for model in llms.models.values())
    [answer] = answer_batch(llms, "eyes_mouth_pose", ["(눈 보통" * 3], seed=0, max_tries=2)
    assert answer.tries == len(answer.attempts) and 1 <= answer.tries <= 2
    if answer.fell_back:   # the untrained tiny adapter usually babbles: the fallback after both tries
        assert answer.tries == 2 and answer.text == "(눈 보통, 입 보통, 고개 돌림 없음)"
    else:
        assert parse_expression(answer.text) is not None
