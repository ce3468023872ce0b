"""The lease store: SQLite in WAL mode. A change is answered only once its transaction is
committed, so a kill -9 at any point loses nothing that was answered; the daemon rebuilds its
state from here on start, so an address is never handed out twice and a lease is never lost.

Writes go through ``write(op)``: in the daemon (``background=True``) a writer thread runs every op
waiting at that moment in one transaction (group commit; each op in its own savepoint, so one
failing op fails alone) and resolves each op's future after the COMMIT: the event loop never waits
for SQLite, and 40 concurrent ADDs cost one commit. Without the thread (tests, benchmarks, tools)
``write`` runs the op at once in its own transaction.

Tables: ``leases`` (one row per handed-out address), ``cooling`` (released addresses and when they
may be reused; rows past that time are pruned, so the file stays as small as the live state),
``range_cursors`` (per subnet: where the next scan starts). Start-up reads live leases and
unexpired cooling rows only, through an index: its cost does not grow with the leases ever made."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("eksnet-ipamd")

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    pool TEXT NOT NULL, address TEXT NOT NULL, network TEXT NOT NULL, container_id TEXT NOT NULL,
    ifname TEXT NOT NULL, netns TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (pool, address), UNIQUE (network, container_id, ifname, pool));
CREATE TABLE IF NOT EXISTS cooling (
    pool TEXT NOT NULL, address TEXT NOT NULL, ready_at REAL NOT NULL, PRIMARY KEY (pool, address));
CREATE TABLE IF NOT EXISTS range_cursors (subnet TEXT PRIMARY KEY, cursor TEXT NOT NULL);
"""
# Version 1 (no user_version) lacked the source column, the cooling index and keyed cursors by
# range set; its cursors are only hints, so they are dropped.
MIGRATE_TO_2 = """
ALTER TABLE leases ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS cooling_ready ON cooling (ready_at);
DROP TABLE IF EXISTS cursors;
"""
PRUNE_CHUNK = 5000

Op = Callable[[sqlite3.Connection], object]


@dataclass(frozen=True)
class LeaseRow:
    pool: str
    address: str
    network: str
    container_id: str
    ifname: str
    netns: str
    created: float
    source: str = ""


def text_in(value: str) -> str | bytes:
    """A string for SQLite: CNI_NETNS may hold bytes that are not UTF-8 (kept as surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")
    return value


def text_out(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


class Store:
    def __init__(self, state_dir: str | os.PathLike[str], background: bool = False) -> None:
        path = Path(state_dir)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path / "leases.db"
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives the daemon's crash (kill -9) at any point; only an OS crash
        # or power loss can lose the last commits, and then every pod namespace of the node is gone
        # too (nothing can hold the address twice). FULL would fsync each commit: 0.5-4 ms here.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        os.chmod(self.path, 0o600)
        self._queue: queue.SimpleQueue | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._writer, name="eksnet-store", daemon=True)
            self._thread.start()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        had_leases = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'leases'").fetchone() is not None
        with self.transaction() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(leases)")}
            for statement in MIGRATE_TO_2.split(";"):
                if not statement.strip() or ("ADD COLUMN source" in statement and "source" in columns):
                    continue
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if had_leases and version < 2:
            log.info("lease store migrated to schema %d", SCHEMA_VERSION)

    def close(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        self.db.close()

    # -- reads (start-up only) -------------------------------------------------------------------
    def leases(self) -> Iterator[LeaseRow]:
        for row in self.db.execute(
                "SELECT pool, address, network, container_id, ifname, netns, created, source FROM leases"):
            yield LeaseRow(*row[:5], text_out(row[5]), row[6], row[7])

    def cooling(self, now: float) -> Iterator[tuple[str, str, float]]:
        """Released addresses whose cooldown is not over at ``now`` (the others are free)."""
        yield from self.db.execute(
            "SELECT pool, address, ready_at FROM cooling WHERE ready_at > ? ORDER BY ready_at", (now,))

    def cursors(self) -> dict[str, int]:
        return {subnet: int(cursor) for subnet, cursor in self.db.execute("SELECT subnet, cursor FROM range_cursors")}

    # -- writes ----------------------------------------------------------------------------------
    def write(self, op: Op) -> concurrent.futures.Future:
        """Run ``op(db)`` in a transaction; the future resolves once it is committed."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        if self._queue is not None:
            self._queue.put((op, future))
            return future
        try:
            with self.transaction() as db:
                result = op(db)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the write
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    def _writer(self) -> None:
        assert self._queue is not None
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Op, concurrent.futures.Future]]) -> None:
        done: list[tuple[concurrent.futures.Future, object]] = []
        failed: list[tuple[concurrent.futures.Future, BaseException]] = []
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for op, future in batch:
                self.db.execute("SAVEPOINT op")
                try:
                    result = op(self.db)
                except Exception as exc:  # noqa: BLE001 - this op fails alone
                    self.db.execute("ROLLBACK TO op")
                    failed.append((future, exc))
                else:
                    done.append((future, result))
                self.db.execute("RELEASE op")
            self.db.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: nobody's change is recorded
            if self.db.in_transaction:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, result in done:
            future.set_result(result)
        for future, exc in failed:
            future.set_exception(exc)

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)


# -- the ops the service writes (each runs inside a transaction) ---------------------------------
def grant_op(rows: list[tuple], reused: list[tuple[str, str]], cursors: dict[str, int]) -> Op:
    """Insert lease rows (pool, address, network, container, ifname, netns, created, source), drop
    the cooling rows of reused addresses, save cursors."""
    def op(db: sqlite3.Connection) -> None:
        db.executemany("INSERT INTO leases (pool, address, network, container_id, ifname, netns, created, source) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        if reused:
            db.executemany("DELETE FROM cooling WHERE address = ?", [(a,) for _, a in reused])
        if cursors:
            db.executemany("INSERT OR REPLACE INTO range_cursors VALUES (?, ?)",
                           [(k, str(v)) for k, v in cursors.items()])
    return op


def release_op(released: list[tuple[str, str, float]]) -> Op:
    """Delete leases and start their cooldown: [(pool, address, ready_at)]."""
    def op(db: sqlite3.Connection) -> None:
        db.executemany("DELETE FROM leases WHERE pool = ? AND address = ?", [(p, a) for p, a, _ in released])
        db.executemany("INSERT OR REPLACE INTO cooling VALUES (?, ?, ?)", released)
    return op


def prune_op(now: float, limit: int = PRUNE_CHUNK) -> Op:
    """Forget up to ``limit`` cooling rows whose cooldown is over; returns how many it removed."""
    def op(db: sqlite3.Connection) -> int:
        return db.execute("DELETE FROM cooling WHERE rowid IN (SELECT rowid FROM cooling WHERE ready_at <= ? LIMIT ?)",
                          (now, limit)).rowcount
    return op


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
