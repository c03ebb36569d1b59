"""Atomic writes: a reader never sees a half-written file or folder, even after a crash.

Usage: ``with atomic_dir(target) as tmp: save_into(tmp)`` — ``target`` appears only when the block succeeds.

Every cache entry also carries a manifest (file names, sizes, sha256) written last, so a folder
without a manifest is unfinished and one whose files disagree with it is corrupt.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

MANIFEST_NAME = "ohlora-manifest.json"


def _umask() -> int:
    """The process umask. os.umask can only set it, and setting it for a moment to read it would give files
    that other threads create meanwhile (the SQLite writers) no mask at all: read it from Linux instead."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0)   # elsewhere: the only portable way
    os.umask(current)
    return current


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a plain file gets the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


AT_FDCWD, RENAME_EXCHANGE = -100, 2   # Linux renameat2: paths relative to the cwd; swap the two names


def exchange_paths(first: Path, second: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    False where the system or file system cannot (then nothing changed); other failures raise OSError.
    """
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(error, os.strerror(error), str(first))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's live process
        return True
    return True


def clean_leftovers(target: Path) -> list[Path]:
    """Remove what a killed ``atomic_dir`` left next to ``target``; restore ``target`` if it was mid-swap.

    Leftovers carry their process id (``.NAME.PID.….tmp`` / ``.NAME.PID.old``), so a folder another live
    process is still building is never touched. Returns the paths removed or restored.
    """
    target = Path(target)
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.(.*)$")
    handled = []
    for path in sorted(target.parent.glob(f".{target.name}.*")):
        match = pattern.match(path.name)
        if not match or _alive(int(match.group(1))):
            continue
        if match.group(2) == "old" and not target.exists():
            os.replace(path, target)          # killed between the two renames of the fallback: undo
        else:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        handled.append(path)
    return handled


@contextmanager
def atomic_dir(target: Path):
    """Yield a temporary folder next to ``target``; on success it takes ``target``'s place atomically.

    An existing ``target`` is swapped with the new folder in one step (``exchange_paths``), so there is
    no moment without it; where the system cannot swap, two renames are used and a kill between them is
    undone by the next ``atomic_dir`` or ``clean_leftovers`` on the same target, which also removes
    half-built folders of killed processes.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        if not target.exists():
            os.replace(tmp, target)
        elif exchange_paths(tmp, target):
            shutil.rmtree(tmp, ignore_errors=True)   # tmp now holds the previous folder
        else:
            old = target.with_name(f".{target.name}.{os.getpid()}.old")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _file_digest(path: Path, digest, chunk_bytes: int = 1 << 22) -> str:
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    return _file_digest(path, hashlib.sha256())


def xxh3_file(path: Path) -> str:
    """A fast whole-file checksum (xxh3, several GB/s): cheap enough to check at every load."""
    import xxhash

    return _file_digest(path, xxhash.xxh3_64())


def write_manifest(folder: Path, **facts) -> dict:
    """Record every file's size and sha256 (plus ``facts``) as the folder's last file."""
    folder = Path(folder)
    files = {
        str(path.relative_to(folder)): {"bytes": path.stat().st_size, "sha256": sha256_file(path),
                                        "xxh3": xxh3_file(path)}
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME
    }
    manifest = {"files": files, **facts}
    atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, ensure_ascii=False, indent=2))
    return manifest


def read_manifest(folder: Path) -> dict | None:
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"files": None}  # unreadable manifest: reported as corrupt by manifest_problem


def manifest_problem(folder: Path, deep: bool = False) -> str | None:
    """None when ``folder`` matches its manifest; else what is wrong.

    Always: every file present with its size and its xxh3 stamp (a file damaged in place, same size, is
    caught at load); with ``deep`` also its sha256. Manifests written before the stamp existed are checked
    by size only.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return "missing (no manifest)"
    if not isinstance(manifest.get("files"), dict):
        return f"its {MANIFEST_NAME} is unreadable"
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"]:
            return f"{name} has {path.stat().st_size} bytes, expected {expected['bytes']}"
        if "xxh3" in expected and xxh3_file(path) != expected["xxh3"]:
            return f"{name} is damaged (its content no longer matches its checksum)"
        if deep and sha256_file(path) != expected["sha256"]:
            return f"{name} does not match its sha256"
    return None


# --- SQLite: one database file, transactions, and clear errors for locked / read-only / corrupt files ---

DB_TIMEOUT_S = 5.0  # how long a writer waits for another writer's transaction before giving up


@contextmanager
def database_errors(path: Path):
    """Turn sqlite3's errors about the *file* into OhloraErrors that say what to do."""
    import sqlite3

    from .errors import OhloraError

    try:
        yield
    except sqlite3.DatabaseError as error:
        text = str(error).lower()
        if "locked" in text or "busy" in text:
            raise OhloraError(f"database {path} is locked by another process",
                              fix="close the other chat or notebook that uses it, then try again") from None
        if "readonly" in text or "read-only" in text:
            raise OhloraError(f"database {path} is read-only",
                              fix="make the file and its folder writable, or set another path") from None
        if "not a database" in text or "malformed" in text or "file is encrypted" in text:
            raise OhloraError(f"{path} is not a usable SQLite database ({error})",
                              fix="move the damaged file aside (nothing in it is overwritten); "
                                  "a new database is created on the next start") from None
        if "unable to open" in text:
            raise OhloraError(f"database {path} cannot be opened ({error})",
                              fix="check that its folder exists and is writable") from None
        raise


def open_database(path: Path, schema_sql: str):
    """Open (creating if needed) the SQLite file at ``path`` and apply ``schema_sql`` (CREATE … IF NOT EXISTS)."""
    import sqlite3

    path = Path(path)
    with database_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=DB_TIMEOUT_S, isolation_level=None)  # we BEGIN ourselves
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fails on a non-database
            with transaction(connection, path):
                for statement in schema_sql.split(";"):  # our schemas hold no ";" inside strings
                    if statement.strip():
                        connection.execute(statement)
        except BaseException:
            connection.close()
            raise
    return connection


@contextmanager
def transaction(connection, path: Path | str = "database"):
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any error): all of a change lands, or none of it."""
    with database_errors(Path(path)):
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
