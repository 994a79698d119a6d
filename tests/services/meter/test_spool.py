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


def _used_bytes(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        size, pages, free = (
            db.execute(f"PRAGMA {n}").fetchone()[0] for n in ("page_size", "page_count", "freelist_count")
        )
        return int((pages - free) * size)
    finally:
        db.close()


def test_flushed_events_are_kept_only_within_the_replay_budget_so_the_spool_never_fills(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    capacity = 2 * 1024 * 1024
    spool = Spool(path, capacity_bytes=capacity)
    reader = spool.reader()
    try:
        last: list[Event] = []
        for _ in range(40):  # 20,000 events of ~500 bytes: five times what the spool may hold
            last = _events(500)
            assert _append(spool, last) == [NEW] * 500  # never refused: flushed events make room
            reader.mark_flushed([seq for seq, _, _ in reader.oldest(1000)])  # the warehouse took them
            reader.checkpoint()
            reader.trim()
            assert _used_bytes(path) <= spool.replay_bytes
        assert path.stat().st_size <= capacity  # freed pages are reused: the file stops growing
        assert spool.pending == 0
        assert _append(spool, last[-10:]) == [DUPLICATE] * 10  # the replay window still answers resends
        assert spool.problems() == []
    finally:
        reader.close()
        spool.close()


def test_a_backlog_fills_the_spool_to_its_capacity_then_503_until_flushed(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, capacity_bytes=1024 * 1024)
    reader = spool.reader()
    try:
        accepted = 0
        with pytest.raises(SpoolFullError):
            for _ in range(100):  # the warehouse is down: nothing is flushed
                _append(spool, _events(200))
                accepted += 200
        assert 0 < accepted < 20_000 and spool.pending == accepted
        assert "spool_full" in spool.problems()
        assert reader.trim() == 0  # pending events are never pruned
        reader.mark_flushed([seq for seq, _, _ in reader.oldest(accepted)])
        reader.checkpoint()
        reader.trim()
        assert _append(spool, _events(200)) == [NEW] * 200
        assert spool.problems() == []
    finally:
        reader.close()
        spool.close()


def test_a_second_spool_on_the_same_file_is_refused_naming_the_holder(tmp_path: Path) -> None:
    import os

    from foundation.errors import InputError

    first = Spool(tmp_path / "spool.db")
    try:
        with pytest.raises(InputError) as raised:
            Spool(tmp_path / "spool.db")
        assert "--spool" in str(raised.value) and f"pid {os.getpid()}" in str(raised.value)
    finally:
        first.close()
    Spool(tmp_path / "spool.db").close()  # free again once the holder closed it
