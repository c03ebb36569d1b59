"""Provenance stamps: the same inputs and code give the same stamp, any change gives another; reuse needs an
intact artifact with the same stamp, and FORCE turns reuse off."""
import json
import sys

import pytest

from ohlora_utils import provenance as prov
from ohlora_utils.storage import write_manifest

CODE = ["ohlora_utils.provenance"]


def stamped_folder(tmp_path, stamp, name="model"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00" * 64)
    (folder / "meta.json").write_text(json.dumps({"provenance": stamp}), encoding="utf-8")
    write_manifest(folder)
    return folder


def test_the_same_inputs_give_the_same_stamp_and_any_change_another():
    first = prov.provenance({"config": {"lr": 1e-4, "epochs": 2}, "rows_sha256": "ab"}, CODE)
    again = prov.provenance({"rows_sha256": "ab", "config": {"epochs": 2, "lr": 1e-4}}, CODE)
    assert first["sha256"] == again["sha256"]
    for changed in ({"config": {"lr": 2e-4, "epochs": 2}, "rows_sha256": "ab"},
                    {"config": {"lr": 1e-4, "epochs": 2}, "rows_sha256": "ac"}):
        assert prov.provenance(changed, CODE)["sha256"] != first["sha256"]
    assert set(first["versions"]) == set(prov.LIBRARIES)


def test_the_code_version_follows_the_source_of_the_modules(tmp_path, monkeypatch):
    module = tmp_path / "trainer_under_test.py"
    module.write_text("LR = 1e-4\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = prov.code_version(["trainer_under_test"])
    module.write_text("LR = 2e-4\n")
    assert prov.code_version(["trainer_under_test"]) != before
    sys.modules.pop("trainer_under_test", None)


def test_an_intact_artifact_with_the_same_stamp_is_reused(tmp_path):
    stamp = prov.provenance({"x": 1}, CODE)
    folder = stamped_folder(tmp_path, stamp)
    assert prov.reusable(folder, "meta.json", stamp)
    other = prov.provenance({"x": 2}, CODE)
    assert not prov.reusable(folder, "meta.json", other)
    assert prov.why_not_reused(folder, "meta.json", other) == "changed since: inputs.x"


@pytest.mark.parametrize("problem", ["nothing trained yet", "no provenance stamp", "damaged", "forced"])
def test_anything_else_retrains_and_says_why(tmp_path, monkeypatch, problem):
    stamp = prov.provenance({"x": 1}, CODE)
    folder = stamped_folder(tmp_path, stamp)
    expected = {"nothing trained yet": "nothing trained yet", "no provenance stamp": "no provenance stamp",
                "damaged": "no longer match their manifest", "forced": prov.FORCE_ENV}[problem]
    if problem == "nothing trained yet":
        folder = tmp_path / "elsewhere"
    elif problem == "no provenance stamp":
        (folder / "meta.json").write_text("{}", encoding="utf-8")
        write_manifest(folder)
    elif problem == "damaged":
        (folder / "weights.bin").write_bytes(b"\x01" * 64)
    else:
        monkeypatch.setenv(prov.FORCE_ENV, "1")
    assert not prov.reusable(folder, "meta.json", stamp)
    assert expected in prov.why_not_reused(folder, "meta.json", stamp)
