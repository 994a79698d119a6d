"""One writer thread for the webhooks store: it commits every write queued since its last commit as one transaction
(group commit), so a thousand outcomes a second cost a few fsyncs, not a thousand; each write runs in its own
savepoint, so one failing write does not undo the others in its group. A write is a function of the connection;
its caller awaits the result, which is settled only after the commit returned (synchronous=FULL: on disk).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
GROUP_LIMIT = 2000
"""Most writes committed in one transaction."""


class _Write:
    __slots__ = ("fn", "future", "loop")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], future: Any, loop: Any) -> None:
        self.fn, self.future, self.loop = fn, future, loop


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class GroupCommitWriter:
    """Owns the store's writing connection and the thread that commits through it."""

    def __init__(self, db: sqlite3.Connection, name: str) -> None:
        self.db = db
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Write(fn, future, loop))
        return await future

    def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """For start-up and tests (no event loop)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(self.db)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return result

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            writes = [first]
            stop = False
            while len(writes) < GROUP_LIMIT:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                writes.append(more)
            self._commit(writes)
            if stop:
                return

    def _commit(self, writes: list[_Write]) -> None:
        results: list[tuple[Any, BaseException | None]] = []
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for write in writes:
                self.db.execute("SAVEPOINT w")
                try:
                    results.append((write.fn(self.db), None))
                    self.db.execute("RELEASE w")
                except Exception as exc:
                    self.db.execute("ROLLBACK TO w")
                    self.db.execute("RELEASE w")
                    results.append((None, exc))
            self.db.execute("COMMIT")  # synchronous=FULL: on disk when this returns
        except sqlite3.Error as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            results = [(None, exc)] * len(writes)
        for write, (result, error) in zip(writes, results, strict=True):
            write.loop.call_soon_threadsafe(_settle, write.future, result, error)

    def close(self) -> None:
        """Commit what is queued, stop the thread, close the connection."""
        self._queue.put(None)
        self._thread.join(10)
        self.db.close()
