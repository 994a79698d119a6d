"""The spool without HTTP: group commit outcomes, the flushed-through mark, pruning, spools from before the mark."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from services.meter import events
from services.meter.events import Event
from services.meter.spool import CONFLICT, DUPLICATE, NEW, Spool, SpoolFullError
from tests.services.meter_harness import kong_entry, repo_roster

ROSTER = repo_roster()


def _events(count: int, status: int = 200) -> list[Event]:
    now = dt.datetime.now(dt.UTC)
    out = []
    for _ in range(count):
        event = events.kong_event(kong_entry(status=status), ROSTER, now)
        assert isinstance(event, Event)
        out.append(event)
    return out


def _append(spool: Spool, batch: Sequence[Event]) -> list[str]:
    async def go() -> list[str]:
        return await spool.append(batch)

    return asyncio.run(go())


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path / "spool.db", max_pending=50)
    yield opened
    opened.close()


def test_outcomes_and_depth(spool: Spool) -> None:
    batch = _events(10)
    assert _append(spool, batch) == [NEW] * 10
    again = [batch[0], batch[0], *batch[1:3]]
    assert _append(spool, again) == [DUPLICATE] * 4
    twice = _events(1)
    assert _append(spool, [twice[0], twice[0]]) == [NEW, DUPLICATE]  # the same id twice in one Kong batch
    assert spool.pending == 11
    conflicting = Event(batch[1].event_id, "api", "another fingerprint", batch[1].row)
    assert _append(spool, [conflicting]) == [CONFLICT]


def test_full_spool_refuses_the_batch_that_does_not_fit_and_nothing_of_it_is_written(spool: Spool) -> None:
    assert _append(spool, _events(45)) == [NEW] * 45
    too_many = _events(6)
    with pytest.raises(SpoolFullError):
        _append(spool, too_many)
    assert spool.pending == 45
    assert _append(spool, too_many[:5]) == [NEW] * 5  # those ids were not kept by the refused batch


def test_the_mark_moves_in_seq_order_and_pending_follows(spool: Spool) -> None:
    _append(spool, _events(30))
    reader = spool.reader()
    try:
        first = reader.oldest(20)
        assert [seq for seq, _, _ in first] == sorted(seq for seq, _, _ in first)
        reader.mark_flushed([seq for seq, _, _ in first])
        assert spool.pending == 10
        rest = reader.oldest(20)
        assert len(rest) == 10 and rest[0][0] > first[-1][0]
        reader.mark_flushed([seq for seq, _, _ in first])  # a repeated mark changes nothing
        assert spool.pending == 10
        _append(spool, _events(5))  # arrives after the mark: pending, after it
        assert [seq for seq, _, _ in reader.oldest(100)][-5:] == sorted(s for s, _, _ in reader.oldest(100))[-5:]
        assert len(reader.oldest(100)) == 15
    finally:
        reader.close()


def test_prune_forgets_old_flushed_ids_but_never_the_newest_row(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", dedupe_days=1 / 86400)  # one second of dedupe
    try:
        batch = _events(20)
        _append(spool, batch)
        reader = spool.reader()
        reader.mark_flushed([seq for seq, _, _ in reader.oldest(100)])
        time.sleep(1.2)
        assert reader.prune(chunk=7) == 19  # all flushed and old, but the newest row stays
        # A new event sorts above the mark even though almost everything was deleted.
        fresh = _events(1)
        assert _append(spool, fresh) == [NEW]
        assert [row for _, _, row in reader.oldest(10)] == [fresh[0].row_json()]
        assert _append(spool, batch[:1]) == [NEW]  # forgotten ids count as new (the warehouse MERGE keeps it once)
        reader.close()
    finally:
        spool.close()


def test_a_spool_from_before_the_mark_opens_with_its_pending_events(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
          fingerprint TEXT NOT NULL, row TEXT NOT NULL, received REAL NOT NULL, flushed INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX pending ON events(seq) WHERE flushed = 0;
        CREATE INDEX flushed_age ON events(received) WHERE flushed = 1;
        """
    )
    batch = _events(8)
    for index, event in enumerate(batch):
        old.execute(
            "INSERT INTO events (event_id, kind, fingerprint, row, received, flushed) VALUES (?, ?, ?, ?, ?, ?)",
            (event.event_id, event.kind, event.fingerprint, event.row_json(), time.time(), int(index < 5)),
        )
    old.commit()
    old.close()
    spool = Spool(path)
    try:
        assert spool.pending == 3
        reader = spool.reader()
        assert [row for _, _, row in reader.oldest(10)] == [e.row_json() for e in batch[5:]]
        assert _append(spool, batch[:2]) == [DUPLICATE, DUPLICATE]  # ids from before the upgrade still dedupe
        reader.close()
    finally:
        spool.close()
    indexes = sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    assert ("pending",) not in indexes and ("flushed_age",) not in indexes


def test_the_writer_leaves_checkpoints_to_the_flusher_which_runs_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    try:
        batch = _events(1000)
        for round_ in range(12):  # past SQLite's 1,000-page autocheckpoint, which the writer would otherwise run
            _append(spool, [Event(f"{round_}-{e.event_id}", e.kind, e.fingerprint, e.row) for e in batch])
        database = tmp_path / "spool.db"
        before = database.stat().st_size
        assert (tmp_path / "spool.db-wal").stat().st_size > 4_200_000 and before < 1_000_000
        reader = spool.reader()
        reader.checkpoint()
        assert database.stat().st_size > before + 2_000_000  # the rows moved into the database file
        reader.close()
    finally:
        spool.close()
