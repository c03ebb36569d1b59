"""Provisioning: filled once, reused, rebuilt when damaged, clear errors when something is missing."""
import pytest
import torch

from ohlora_utils import models
from ohlora_utils.errors import OhloraError
from ohlora_utils.profiles import ModelSource, get_profile

FAKE = ModelSource("fake-model", "llama", "pypi")


@pytest.fixture
def fake_builder(tmp_path, monkeypatch):
    """A cache in tmp_path and a builder that counts its calls."""
    monkeypatch.setenv("OHLORA_CACHE_DIR", str(tmp_path))
    calls = []

    def build(out):
        calls.append(out)
        (out / "weights.bin").write_bytes(b"0123456789")

    monkeypatch.setitem(models.BUILDERS, FAKE.key, (build, lambda: "v1"))
    return calls


def test_cache_is_filled_once_and_reused(fake_builder):
    first = models.ensure_model(FAKE)
    second = models.ensure_model(FAKE)
    assert first == second == models.model_dir(FAKE)
    assert len(fake_builder) == 1


def test_damaged_cache_is_reported_on_load_and_rebuilt_by_provisioning(fake_builder):
    folder = models.ensure_model(FAKE)
    (folder / "weights.bin").write_bytes(b"01")
    with pytest.raises(OhloraError, match="damaged.*make provision"):
        models._require_local(FAKE)
    models.ensure_model(FAKE)
    assert len(fake_builder) == 2
    assert (folder / "weights.bin").read_bytes() == b"0123456789"


def test_a_cache_file_damaged_in_place_with_the_same_size_is_caught_at_load(fake_builder):
    folder = models.ensure_model(FAKE)
    (folder / "weights.bin").write_bytes(b"0123456788")   # one byte changed, same size
    with pytest.raises(OhloraError, match="damaged.*weights.bin.*make provision"):
        models._require_local(FAKE)
    models.ensure_model(FAKE)
    assert len(fake_builder) == 2 and (folder / "weights.bin").read_bytes() == b"0123456789"


def test_changed_fingerprint_rebuilds(fake_builder, monkeypatch):
    models.ensure_model(FAKE)
    monkeypatch.setitem(models.BUILDERS, FAKE.key, (models.BUILDERS[FAKE.key][0], lambda: "v2"))
    models.ensure_model(FAKE)
    assert len(fake_builder) == 2


def test_interrupted_build_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OHLORA_CACHE_DIR", str(tmp_path))

    def crash(out):
        (out / "half.bin").write_bytes(b"x")
        raise KeyboardInterrupt

    monkeypatch.setitem(models.BUILDERS, FAKE.key, (crash, lambda: "v1"))
    with pytest.raises(KeyboardInterrupt):
        models.ensure_model(FAKE)
    assert not models.model_dir(FAKE).exists()
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_model_package_says_how_to_install():
    with pytest.raises(OhloraError, match="not-a-real-package is not installed.*make test"):
        models._package_version("not-a-real-package")


def test_paper_profile_without_hub_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OhloraError, match="needs kakaocorp/kanana-1.5-2.1b-base.*profile=embedded"):
        models.provision("paper")
    with pytest.raises(OhloraError, match="model hub"):
        models.load_causal_lm(get_profile("paper").llm_for("output_message"))


def test_tiny_models_load_and_generate(tiny_profile):
    for source in tiny_profile.llm_sources():
        model, tokenizer = models.load_causal_lm(source)
        assert model.config.model_type == source.architecture
        ids = tokenizer("로라야 안녕 (답변 시작) ### 답변:", return_tensors="pt")
        out = model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert out.shape[1] == ids["input_ids"].shape[1] + 3


def test_tiny_tokenizer_round_trips_korean_and_markers(tiny_profile):
    tokenizer = models.load_tokenizer(tiny_profile.llm_for("memory"))
    text = "[좋아하는 음식: 떡볶이] (지금은 토요일 저녁) 오늘 뭐 먹지? 😋 (요약 시작) ### 답변:"
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text
    assert tokenizer.unk_token_id not in tokenizer(text)["input_ids"]


def test_tiny_sbert_embeds_normalised_vectors(tiny_profile):
    sbert = models.load_sbert_base(tiny_profile)
    vectors = sbert.encode(["오늘 날씨 어때?", "떡볶이 좋아해"], convert_to_tensor=True)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2), atol=1e-5)


def test_inference_uses_bf16_only_where_the_cpu_has_it_natively():
    import torch

    from ohlora_utils.models import inference_dtype

    assert inference_dtype("flags : fpu sse2 avx2 avx512f avx512_bf16 amx_tile") == torch.bfloat16
    assert inference_dtype("flags : fpu sse2 avx2 amx_bf16") == torch.bfloat16
    assert inference_dtype("flags : fpu sse2 avx2 avx512f") == torch.float32
    assert inference_dtype("") == torch.float32
