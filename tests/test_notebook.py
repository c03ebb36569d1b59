"""Notebook parameters are checked against their annotations; the committed notebooks keep the conventions."""
import json
import re
from pathlib import Path

import pytest

from ohlora_utils.errors import OhloraError
from ohlora_utils.notebook import QUICK_SCRIPT_TURNS, check_parameters, scripted_turns


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


# --- the committed notebooks keep the study's conventions -------------------------------------------------
NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
# `name: type = value  # help`; a value spread over lines carries its help on the closing line, where papermill reads it
PARAMETER_LINE = re.compile(r"^\w+: [\w\[\], ]+ = (.+#\s*\S|[\[{(]$)")


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell):
    return "".join(cell["source"])


def parameters_cells(notebook_cells):
    return [cell for cell in notebook_cells if "parameters" in cell.get("metadata", {}).get("tags", [])]


def test_the_five_notebooks_are_committed():
    assert [path.stem for path in NOTEBOOKS] == ["01_dataset_augmentation", "02_finetune_llms", "03_sbert_memory",
                                                 "04_sbert_ethics", "05_chat_demo"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_opens_with_a_title_then_one_typed_parameters_cell(path):
    notebook_cells = cells(path)
    assert notebook_cells[0]["cell_type"] == "markdown" and source(notebook_cells[0]).startswith("# ")
    tagged = parameters_cells(notebook_cells)
    assert len(tagged) == 1 and tagged[0] is notebook_cells[1]
    statements = [line for line in source(tagged[0]).splitlines() if line and not line.startswith((" ", "]"))]
    assert statements and all(PARAMETER_LINE.match(line) for line in statements), statements


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter_with_its_type_and_help(path):
    # papermill skips a line whose help text holds a second '=', and `papermill --help-notebook` loses it
    import papermill
    lines = source(parameters_cells(cells(path))[0]).splitlines()
    names = [line.split(":")[0] for line in lines if PARAMETER_LINE.match(line)]
    inferred = papermill.inspect_notebook(str(path))
    assert list(inferred) == names
    assert all(parameter["help"] and parameter["inferred_type_name"] != "None" for parameter in inferred.values())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_checked_cell_has_stored_outputs_to_compare_against(path):
    # nbval passes a checked cell with no stored outputs: refresh them with `make checked-outputs NB=…`
    checked = [cell for cell in cells(path) if cell["cell_type"] == "code" and "NBVAL_CHECK_OUTPUT" in source(cell)]
    assert checked, "each notebook checks at least one deterministic cell"
    assert all(cell.get("outputs") for cell in checked), f"{path.name}: run make checked-outputs NB={path}"


def test_the_quick_preset_plays_the_first_turns_and_the_last_of_a_long_script():
    script = [f"message {n}" for n in range(1, 10)]
    assert scripted_turns(script, "default") == list(enumerate(script, start=1))
    quick = scripted_turns(script, "quick")
    assert len(quick) == QUICK_SCRIPT_TURNS
    assert [number for number, _ in quick] == [1, 2, 3, 9] and quick[-1] == (9, "message 9")
    assert scripted_turns(script[:3], "quick") == list(enumerate(script[:3], start=1))   # short: all of it
