"""The embedded registry's SQLite metadata: WAL mode, one short transaction per mutation.

WAL lets readers run while one writer commits; ``BEGIN IMMEDIATE`` takes the write lock up
front, so concurrent writers queue (up to the busy timeout) instead of failing half-way.
A version's rows, its files and its audit entry commit together or not at all.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import RegistryError

DB_FILE = "registry.db"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 120.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    lineage TEXT NOT NULL,
    metrics TEXT NOT NULL,
    gates TEXT,
    UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS files (
    version_id INTEGER NOT NULL REFERENCES versions(id),
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    executable INTEGER NOT NULL,
    PRIMARY KEY (version_id, path)
);
CREATE INDEX IF NOT EXISTS files_by_blob ON files (sha256);
CREATE TABLE IF NOT EXISTS tags (
    version_id INTEGER NOT NULL REFERENCES versions(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (version_id, key)
);
CREATE TABLE IF NOT EXISTS env_pointers (
    name TEXT NOT NULL,
    env TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (name, env)
);
CREATE TABLE IF NOT EXISTS env_moves (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    env TEXT NOT NULL,
    action TEXT NOT NULL,
    from_version TEXT,
    to_version TEXT,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT,
    env TEXT,
    from_value TEXT,
    to_value TEXT,
    detail TEXT NOT NULL
);
"""


def connect(root: Path) -> sqlite3.Connection:
    """Open (creating on first use) the registry database under ``root``."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(root / DB_FILE, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise RegistryError(f"cannot open the registry at {root}: {exc}") from None
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            _create(conn)
        conn.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise damaged(root / DB_FILE, exc) from None
    return conn


def damaged(path: Path, exc: Exception) -> RegistryError:
    return RegistryError(
        f"the registry database {path} is damaged ({exc}); its versions' files are safe in the "
        "blob store: restore the database from a backup, then run `lfm registry verify`"
    )


def _create(conn: sqlite3.Connection) -> None:
    # Switching to WAL needs a moment without other writers: retry while another process
    # creating the same registry holds the lock.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with transaction(conn):
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction: everything inside commits together, or nothing does."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
