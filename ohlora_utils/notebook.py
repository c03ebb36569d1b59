"""What every study notebook does right after its ``parameters`` cell.

Usage: ``setup_notebook(globals())`` — checks the parameters' types, seeds everything, sets up plots.

- Parameters are declared ``name: type = value  # help``; papermill may inject new values (``-p``),
  so their types are checked against the annotations: a wrong type is one clear line, not a crash later.
- An ``OhloraError`` raised in any later cell is shown as one line (problem — what to do), without the
  library traceback behind it; papermill and nbval still see the cell as failed.
- Plots use NanumGothic (shipped by the ``koreanize-matplotlib`` package) so Hangul labels render.
- ``scripted_turns(messages, preset)``: which turns of notebook 05's scripted conversation a preset plays.
"""
from __future__ import annotations

import os
import random
import typing

from .errors import OhloraError


def check_parameters(namespace: dict) -> None:
    """Raise one OhloraError naming every parameter whose value does not have its annotated type."""
    problems = []
    for name, annotation in namespace.get("__annotations__", {}).items():
        if name not in namespace:
            continue
        value = namespace[name]
        if not _has_type(value, annotation):
            problems.append(f"{name}={value!r} should be {_type_name(annotation)}")
    if problems:
        raise OhloraError("wrong parameter type: " + "; ".join(problems),
                          fix="fix the value in the parameters cell or the papermill -p option")


def _has_type(value, annotation) -> bool:
    origin = typing.get_origin(annotation)
    if origin is not None:  # list[str], dict[str, int], …: check the container only
        return isinstance(value, origin)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation) if isinstance(annotation, type) else True


def _type_name(annotation) -> str:
    return getattr(annotation, "__name__", str(annotation))


QUICK_SCRIPT_TURNS = 4   # turns of a scripted conversation the quick preset (make test) plays: the first 3, the last


def scripted_turns(messages: list[str], preset: str) -> list[tuple[int, str]]:
    """``(number, message)`` of the scripted turns to play, numbered from 1 as in the script: every message,
    or under the ``quick`` preset the first ``QUICK_SCRIPT_TURNS - 1`` and the last. Adapters trained for a
    few steps seldom reach their end markers, so each of their turns decodes every try to the token limit;
    the shorter script still states a fact, asks for it and ends as the whole one does."""
    numbered = list(enumerate(messages, start=1))
    if preset != "quick" or len(numbered) <= QUICK_SCRIPT_TURNS:
        return numbered
    return numbered[:QUICK_SCRIPT_TURNS - 1] + numbered[-1:]


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def use_korean_font() -> None:
    import matplotlib
    from matplotlib import font_manager
    from importlib.resources import files

    font = files("koreanize_matplotlib").joinpath("fonts", "NanumGothic.ttf")
    font_manager.fontManager.addfont(str(font))
    matplotlib.rcParams["font.family"] = "NanumGothic"
    matplotlib.rcParams["axes.unicode_minus"] = False  # NanumGothic lacks U+2212


def _show_user_errors_as_one_line() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def one_line(shell, etype, evalue, tb, tb_offset=None):
        shell.showtraceback((etype, evalue, tb), exception_only=True)

    shell.set_custom_exc((OhloraError,), one_line)


def setup_notebook(namespace: dict, seed_name: str = "seed") -> None:
    _show_user_errors_as_one_line()
    check_parameters(namespace)
    if seed_name in namespace:
        seed_everything(namespace[seed_name])
    use_korean_font()


CHECK_OUTPUT_MARK = "# NBVAL_CHECK_OUTPUT"  # nbval --nbval-lax compares only cells carrying this line


def refresh_checked_outputs(path, timeout_s: int = 1800) -> int:
    """Execute the notebook at ``path`` and store the outputs of its checked cells only.

    nbval compares a checked cell's new output with the stored one, so the committed notebook must
    carry those outputs; every other cell is saved without outputs (plots, timings and generations
    stay out of git). Run it with the same profile and preset as ``make test``. Returns the count of
    checked cells.
    """
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=timeout_s, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    checked = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)  # run timestamps: every refresh would differ in every cell
        if CHECK_OUTPUT_MARK in cell.source:
            checked += 1  # keeps its outputs and execution count: nbval refuses outputs of an "unrun" cell
        else:
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)
    return checked


if __name__ == "__main__":
    import sys

    for notebook_path in sys.argv[1:]:
        print(f"{notebook_path}: stored the outputs of {refresh_checked_outputs(notebook_path)} checked cells")
