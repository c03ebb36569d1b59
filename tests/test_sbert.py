"""Chat-time S-BERT: a trained folder loads with its prefixes; a missing or damaged one is a clear error."""
import numpy as np
import pytest

from ohlora_utils.errors import OhloraError
from ohlora_utils.sbert import load_trained_sbert, pair_cosines, with_prefix


def test_texts_get_the_prefix_the_model_was_trained_with():
    assert with_prefix(["안녕", "잘 자"], "query: ") == ["query: 안녕", "query: 잘 자"]


def test_a_trained_folder_loads_and_embeds_unit_vectors(memory_trained):
    model, meta = load_trained_sbert(memory_trained[0])
    cosines = pair_cosines(model, meta, ["나 떡볶이 좋아해"], ["나 떡볶이 좋아해"])
    assert cosines.shape == (1,) and np.isclose(cosines[0], 1.0, atol=1e-4)


def test_a_missing_or_damaged_model_is_a_clear_error(memory_trained, tmp_path):
    with pytest.raises(OhloraError, match="no trained S-BERT model"):
        load_trained_sbert(tmp_path / "nothing")
    import shutil
    damaged = shutil.copytree(memory_trained[0], tmp_path / "damaged")
    weights = next(damaged.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(OhloraError, match="damaged"):
        load_trained_sbert(damaged)
