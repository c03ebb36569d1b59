"""Notebook parameters are checked against their annotations: a wrong type is one clear error."""
import pytest

from ohlora_utils.errors import OhloraError
from ohlora_utils.notebook import check_parameters


def namespace(**values):
    return {"__annotations__": {"seed": int, "lr": float, "profile": str, "tasks": list[str], "quick": bool},
            **values}


def test_correct_types_pass():
    check_parameters(namespace(seed=1, lr=3e-4, profile="tiny", tasks=["memory"], quick=True))


def test_an_int_is_accepted_where_a_float_is_declared():
    check_parameters(namespace(seed=1, lr=1, profile="", tasks=[], quick=False))


def test_every_wrong_parameter_is_named_in_one_error():
    with pytest.raises(OhloraError) as error:
        check_parameters(namespace(seed="abc", lr=True, profile=3, tasks="memory", quick=False))
    message = str(error.value)
    for expected in ("seed='abc' should be int", "lr=True should be float", "profile=3 should be str",
                     "tasks='memory' should be list"):
        assert expected in message
    assert "papermill -p" in message
