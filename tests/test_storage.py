"""Atomic writes and manifests: nothing half-written is ever visible, damage is detected."""
import pytest

import json
import os
import subprocess
import sys

from ohlora_utils import storage
from ohlora_utils.storage import (
    atomic_dir, atomic_write_text, clean_leftovers, exchange_paths, manifest_problem, read_manifest, write_manifest,
)


@pytest.fixture(scope="module")
def dead_pid():
    """The id of a process that has ended (what a killed build leaves in its leftovers' names)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


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


def test_an_existing_folder_is_swapped_in_one_step_so_it_never_goes_missing(tmp_path, monkeypatch):
    target = tmp_path / "entry"
    with atomic_dir(target) as staging:
        (staging / "file.txt").write_text("old")
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(storage.os, "replace", lambda a, b: (renames.append((a, b)), real_replace(a, b)))
    with atomic_dir(target) as staging:
        (staging / "file.txt").write_text("new")
    assert (target / "file.txt").read_text() == "new"
    assert renames == []                   # renameat2(RENAME_EXCHANGE): no rename leaves a gap


def test_exchange_swaps_two_folders(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    (first / "x").write_text("a"), (second / "x").write_text("b")
    assert exchange_paths(first, second)
    assert (first / "x").read_text() == "b" and (second / "x").read_text() == "a"


def test_a_kill_between_the_two_fallback_renames_is_undone_on_the_next_use(tmp_path, dead_pid):
    target = tmp_path / "entry"
    old = tmp_path / f".entry.{dead_pid}.old"      # the target was renamed away, then the process died
    old.mkdir()
    (old / "file.txt").write_text("kept")
    assert clean_leftovers(target) == [old]
    assert (target / "file.txt").read_text() == "kept" and not old.exists()


def test_half_built_folders_of_killed_processes_are_removed_and_live_ones_kept(tmp_path, dead_pid):
    target = tmp_path / "model"
    killed = tmp_path / f".model.{dead_pid}.abc123.tmp"
    live = tmp_path / f".model.{os.getpid()}.def456.tmp"
    killed.mkdir(), live.mkdir()
    (killed / "weights.bin").write_bytes(b"x" * 100)
    with atomic_dir(target) as staging:
        (staging / "weights.bin").write_bytes(b"y")
    assert not killed.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model", live.name])


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

    (tmp_path / "w.bin").write_bytes(b"4321")  # same size, other bytes: the quick xxh3 stamp sees it too
    assert "w.bin is damaged" in manifest_problem(tmp_path)
    assert "w.bin is damaged" in manifest_problem(tmp_path, deep=True)
    manifest = read_manifest(tmp_path)               # a manifest from before the stamp: sha256 only when deep
    for entry in manifest["files"].values():
        del entry["xxh3"]
    atomic_write_text(tmp_path / "ohlora-manifest.json", json.dumps(manifest))
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


# --- SQLite ---------------------------------------------------------------------------------------

import sqlite3
import threading

from ohlora_utils.errors import OhloraError
from ohlora_utils.storage import open_database, transaction

SCHEMA = "CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);" \
         "CREATE INDEX IF NOT EXISTS item_text ON item(text)"


def test_database_is_created_with_its_schema_and_reopened(tmp_path):
    path = tmp_path / "sub" / "db.sqlite"
    connection = open_database(path, SCHEMA)
    with transaction(connection, path):
        connection.execute("INSERT INTO item(text) VALUES ('a')")
    connection.close()
    assert open_database(path, SCHEMA).execute("SELECT text FROM item").fetchall() == [("a",)]


def test_a_failed_transaction_changes_nothing(tmp_path):
    connection = open_database(tmp_path / "db.sqlite", SCHEMA)
    with pytest.raises(sqlite3.IntegrityError):
        with transaction(connection):
            connection.execute("INSERT INTO item(text) VALUES ('a')")
            connection.execute("INSERT INTO item(text) VALUES ('a')")
    assert connection.execute("SELECT count(*) FROM item").fetchone() == (0,)


def test_not_a_database_is_a_clear_error_and_the_file_is_kept(tmp_path):
    path = tmp_path / "db.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OhloraError, match="not a usable SQLite database.*move the damaged file aside"):
        open_database(path, SCHEMA)
    assert path.read_bytes() == b"this is not sqlite" * 100


def test_locked_database_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("ohlora_utils.storage.DB_TIMEOUT_S", 0.1)
    path = tmp_path / "db.sqlite"
    holder = open_database(path, SCHEMA)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    with pytest.raises(OhloraError, match="locked by another process"):
        with transaction(other, path):
            pass
    holder.execute("ROLLBACK")


def test_read_only_database_is_a_clear_error(tmp_path):
    path = tmp_path / "db.sqlite"
    open_database(path, SCHEMA).close()
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    with pytest.raises(OhloraError, match="read-only"):
        with transaction(reader, path):
            reader.execute("INSERT INTO item(text) VALUES ('a')")


def test_two_writers_at_once_lose_nothing(tmp_path):
    path = tmp_path / "db.sqlite"
    open_database(path, SCHEMA).close()

    def writer(prefix):
        connection = open_database(path, SCHEMA)
        for i in range(50):
            with transaction(connection, path):
                connection.execute("INSERT INTO item(text) VALUES (?)", (f"{prefix}{i}",))
        connection.close()

    threads = [threading.Thread(target=writer, args=(p,)) for p in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert open_database(path, SCHEMA).execute("SELECT count(*) FROM item").fetchone() == (100,)


def test_atomic_files_and_folders_get_the_usual_permissions_not_private_temp_ones(tmp_path):
    import os

    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "log.csv", "a,b\n")
        with atomic_dir(tmp_path / "adapter") as staging:
            (staging / "x").write_text("1")
    finally:
        os.umask(previous)
    assert (tmp_path / "log.csv").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "adapter").stat().st_mode & 0o777 == 0o755
