"""The lease store: SQLite in WAL mode, one transaction per change, committed before the daemon
answers. A kill -9 at any point leaves either the whole change or none of it; the daemon rebuilds
its pools from here on start, so an address is never handed out twice and a lease is never lost.

Tables: ``leases`` (one row per handed-out address), ``cooling`` (released addresses and when they
may be reused), ``cursors`` (per range: addresses from here on were never handed out)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    pool TEXT NOT NULL, address TEXT NOT NULL, network TEXT NOT NULL, container_id TEXT NOT NULL,
    ifname TEXT NOT NULL, netns TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (pool, address), UNIQUE (network, container_id, ifname, pool));
CREATE TABLE IF NOT EXISTS cooling (
    pool TEXT NOT NULL, address TEXT NOT NULL, ready_at REAL NOT NULL, PRIMARY KEY (pool, address));
CREATE TABLE IF NOT EXISTS cursors (
    pool TEXT NOT NULL, range_index INTEGER NOT NULL, cursor TEXT NOT NULL, PRIMARY KEY (pool, range_index));
"""


@dataclass(frozen=True)
class LeaseRow:
    pool: str
    address: str
    network: str
    container_id: str
    ifname: str
    netns: str
    created: float


@dataclass(frozen=True)
class Grant:
    """One address handed out, as the store records it."""

    pool: str
    address: str
    range_index: int
    cursor: str | None  # new cursor (decimal integer: IPv6 does not fit SQLite's INTEGER) when the address was fresh, None when reused from cooling


class Store:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        path = Path(state_dir)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path / "leases.db"
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives the daemon's crash (kill -9) at any point; only an OS crash
        # or power loss can lose the last commits, and then every pod namespace of the node is gone
        # too (nothing can hold the address twice). FULL would fsync each commit: 0.5-4 ms here.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        os.chmod(self.path, 0o600)

    def close(self) -> None:
        self.db.close()

    def leases(self) -> Iterator[LeaseRow]:
        for row in self.db.execute("SELECT pool, address, network, container_id, ifname, netns, created FROM leases"):
            yield LeaseRow(*row)

    def cooling(self) -> Iterator[tuple[str, str, float]]:
        yield from self.db.execute("SELECT pool, address, ready_at FROM cooling ORDER BY ready_at")

    def cursors(self) -> Iterator[tuple[str, int, str]]:
        yield from self.db.execute("SELECT pool, range_index, cursor FROM cursors")

    def grant(self, grants: list[Grant], network: str, container_id: str, ifname: str, netns: str,
              now: float) -> None:
        """Record the addresses of one ADD in one transaction."""
        with self.transaction() as db:
            for g in grants:
                db.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (g.pool, g.address, network, container_id, ifname, netns, now))
                if g.cursor is None:
                    db.execute("DELETE FROM cooling WHERE pool = ? AND address = ?", (g.pool, g.address))
                else:
                    db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)", (g.pool, g.range_index, g.cursor))

    def release(self, released: list[tuple[str, str, float]]) -> None:
        """Delete leases and start their cooldown, in one transaction: [(pool, address, ready_at)]."""
        if not released:
            return
        with self.transaction() as db:
            for pool, address, ready_at in released:
                db.execute("DELETE FROM leases WHERE pool = ? AND address = ?", (pool, address))
                db.execute("INSERT OR REPLACE INTO cooling VALUES (?, ?, ?)", (pool, address, ready_at))

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
