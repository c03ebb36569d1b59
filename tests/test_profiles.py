"""One setting picks every model: profile names, the environment variable, and clear errors."""
import pytest

from ohlora_utils.errors import OhloraError
from ohlora_utils.profiles import DEFAULT_PROFILE, PROFILES, get_profile
from ohlora_utils.tasks import TASK_NAMES


def test_default_is_embedded(monkeypatch):
    monkeypatch.delenv("OHLORA_PROFILE", raising=False)
    assert DEFAULT_PROFILE == "embedded"
    assert get_profile().name == "embedded"


def test_environment_variable_picks_the_profile(monkeypatch):
    monkeypatch.setenv("OHLORA_PROFILE", "tiny")
    assert get_profile().name == "tiny"
    assert get_profile("paper").name == "paper"  # an explicit parameter wins


def test_unknown_profile_names_the_choices():
    with pytest.raises(OhloraError, match="unknown profile 'big'.*embedded, paper, tiny"):
        get_profile("big")


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_has_a_model_for_every_task(name):
    profile = get_profile(name)
    assert set(profile.task_models) == set(TASK_NAMES)
    assert profile.sbert_base is not None


def test_embedded_shares_one_base_model_across_tasks():
    assert [s.key for s in get_profile("embedded").llm_sources()] == ["gemma-3-270m"]


def test_paper_and_tiny_use_the_original_architectures_per_task():
    for name in ("paper", "tiny"):
        profile = get_profile(name)
        assert profile.llm_for("output_message").architecture == "llama"   # Kanana
        assert profile.llm_for("summary").architecture == "llama"
        assert profile.llm_for("memory").architecture == "gpt_neox"        # Polyglot-Ko
        assert profile.llm_for("eyes_mouth_pose").architecture == "gpt_neox"


def test_unknown_task_is_a_clear_error():
    with pytest.raises(OhloraError, match="unknown task 'poem'"):
        get_profile("tiny").llm_for("poem")


def test_preset_comes_from_parameter_then_environment(monkeypatch):
    from ohlora_utils.presets import get_preset

    monkeypatch.delenv("OHLORA_PRESET", raising=False)
    assert get_preset() == "default"
    monkeypatch.setenv("OHLORA_PRESET", "quick")
    assert get_preset() == "quick"
    assert get_preset("paper") == "paper"
    with pytest.raises(OhloraError, match="unknown preset 'fast'"):
        get_preset("fast")
