"""Atomic writes and manifests: nothing half-written is ever visible, damage is detected."""
import pytest

from ohlora_utils.storage import (
    atomic_dir, atomic_write_text, manifest_problem, read_manifest, write_manifest,
)


def test_atomic_dir_appears_only_on_success(tmp_path):
    target = tmp_path / "entry"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as staging:
            (staging / "half.bin").write_bytes(b"x")
            raise RuntimeError("crash while writing")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # the staging folder is cleaned up too


def test_atomic_dir_replaces_an_existing_folder(tmp_path):
    target = tmp_path / "entry"
    for content in ("old", "new"):
        with atomic_dir(target) as staging:
            (staging / "file.txt").write_text(content)
    assert (target / "file.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_atomic_write_text_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "a" / "b.txt"
    atomic_write_text(path, "안녕")
    atomic_write_text(path, "안녕하세요")
    assert path.read_text(encoding="utf-8") == "안녕하세요"
    assert [p.name for p in path.parent.iterdir()] == ["b.txt"]


def test_manifest_detects_missing_resized_and_altered_files(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"1234")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.json").write_text("{}")
    write_manifest(tmp_path, fingerprint="abc")
    assert read_manifest(tmp_path)["fingerprint"] == "abc"
    assert manifest_problem(tmp_path, deep=True) is None

    (tmp_path / "w.bin").write_bytes(b"4321")  # same size, other bytes: only the deep check sees it
    assert manifest_problem(tmp_path) is None
    assert "sha256" in manifest_problem(tmp_path, deep=True)
    (tmp_path / "w.bin").write_bytes(b"12")
    assert "w.bin has 2 bytes" in manifest_problem(tmp_path)
    (tmp_path / "sub" / "t.json").unlink()
    assert "t.json is missing" in manifest_problem(tmp_path)


def test_folder_without_manifest_counts_as_missing(tmp_path):
    assert manifest_problem(tmp_path) == "missing (no manifest)"
    (tmp_path / "ohlora-manifest.json").write_text("{not json")
    assert "unreadable" in manifest_problem(tmp_path)
