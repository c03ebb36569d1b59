"""How the next token is drawn: each filter keeps what it should, in transformers' order, and refuses nonsense."""
import pytest
import torch

from ohlora_utils.decoding import DEFAULT_DECODING, Decoding, RowDecoding, candidates
from ohlora_utils.errors import OhloraError

# probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 at temperature 1
LOGITS = torch.log(torch.tensor([0.0625, 0.5, 0.125, 0.25, 0.0625]))


def kept(decoding, temperature=1.0, previous=None, logits=LOGITS):
    return candidates(logits, temperature, decoding, previous)[1].tolist()


def test_the_default_is_transformers_top_k_of_fifty_most_likely_first():
    assert DEFAULT_DECODING == Decoding(top_k=50, top_p=1.0, min_p=0.0, repetition_penalty=1.0)
    everything = kept(DEFAULT_DECODING)
    assert everything[:3] == [1, 3, 2] and sorted(everything[3:]) == [0, 4]   # the last two tie
    assert kept(Decoding(top_k=2)) == [1, 3]


def test_top_p_keeps_the_fewest_tokens_that_reach_p_including_the_one_that_crosses_it():
    assert kept(Decoding(top_p=0.5)) == [1]
    assert kept(Decoding(top_p=0.6)) == [1, 3]
    assert kept(Decoding(top_p=0.75)) == [1, 3]
    assert kept(Decoding(top_p=0.8)) == [1, 3, 2]


def test_min_p_drops_tokens_under_a_share_of_the_top_tokens_probability():
    assert kept(Decoding(min_p=0.2)) == [1, 3, 2]        # 0.125 ≥ 0.2 × 0.5; 0.0625 is not
    assert kept(Decoding(min_p=0.6)) == [1]


def test_temperature_comes_before_the_filters():
    # at temperature 0.5 the probabilities sharpen to about 0.74, 0.18, 0.05, …: min-p 0.2 keeps two
    assert kept(Decoding(min_p=0.2), temperature=0.5) == [1, 3]
    values, _ = candidates(LOGITS, 0.5, DEFAULT_DECODING)
    assert torch.allclose(values, torch.sort(LOGITS / 0.5, descending=True).values)


def test_the_repetition_penalty_lowers_tokens_already_written():
    logits = torch.tensor([2.0, 1.9, -1.0])
    assert kept(Decoding(), logits=logits)[0] == 0
    assert kept(Decoding(repetition_penalty=1.2), previous=torch.tensor([0]), logits=logits)[0] == 1   # 2.0 / 1.2
    values, columns = candidates(torch.tensor([-1.0, -1.1]), 1.0, Decoding(repetition_penalty=2.0), torch.tensor([0]))
    assert columns.tolist() == [1, 0] and values.tolist() == pytest.approx([-1.1, -2.0])   # negative: multiplied


def test_tokens_outside_a_restricted_vocabulary_are_never_candidates():
    logits = torch.tensor([float("-inf"), 1.0, float("-inf"), 0.5])
    assert kept(Decoding(top_k=0), logits=logits) == [1, 3]


def test_the_processor_applies_each_rows_settings_and_masks_the_rest():
    scores = torch.stack([LOGITS, LOGITS])
    processor = RowDecoding([1.0, 1.0], [Decoding(top_k=1), Decoding(top_p=0.6)], prompt_length=2)
    warped = processor(torch.zeros(2, 3, dtype=torch.long), scores)
    assert torch.isfinite(warped[0]).tolist() == [False, True, False, False, False]
    assert torch.isfinite(warped[1]).tolist() == [False, True, False, True, False]


@pytest.mark.parametrize("settings", [{"top_k": -1}, {"top_p": 0.0}, {"top_p": 1.5}, {"min_p": 1.0},
                                      {"repetition_penalty": 0.0}])
def test_settings_out_of_range_are_refused(settings):
    with pytest.raises(OhloraError, match="out of range"):
        Decoding(**settings)
