"""Moves spooled events into the warehouse in batches, idempotently; waits and retries when it is down."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from components.warehouse_tables import API_REQUESTS, PARTNERS, USAGE_EVENTS
from services import warehouse
from services.meter.metrics import Metrics
from services.meter.spool import Spool

log = logging.getLogger("meter.flusher")
TABLES = {"call": USAGE_EVENTS, "api": API_REQUESTS}
BATCH = 5000
PRUNE_EVERY = 3600.0


class Flusher:
    def __init__(
        self,
        spool: Spool,
        connect: Callable[[], Any],
        metrics: Metrics,
        roster_rows: list[dict[str, Any]],
        create_schema: bool,
        interval: float = 0.5,
        max_backoff: float = 10.0,
    ) -> None:
        self._spool = spool
        self._connect = connect
        self._metrics = metrics
        self._roster_rows = roster_rows
        self._create_schema = create_schema
        self.interval = interval
        self.max_backoff = max_backoff
        self._conn: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flusher", daemon=True)
        self._last_prune = 0.0
        self.warehouse_up = False

    def start(self) -> None:
        self._thread.start()

    def stop(self, deadline: float) -> None:
        """Stop the loop, then flush what the warehouse takes until `deadline` (time.monotonic())."""
        self._stop.set()
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        reader = self._spool.reader()
        try:
            while self._spool.pending and time.monotonic() < deadline:
                if not self.flush_once(reader):
                    break
        finally:
            reader.close()
            self._disconnect()

    def _run(self) -> None:
        reader = self._spool.reader()
        backoff = self.interval
        try:
            while not self._stop.is_set():
                ok = self.flush_once(reader)
                backoff = self.interval if ok else min(self.max_backoff, backoff * 2)
                if ok and time.monotonic() - self._last_prune > PRUNE_EVERY:
                    reader.prune()
                    self._last_prune = time.monotonic()
                if not ok or not self._spool.pending:
                    self._stop.wait(backoff)
        finally:
            reader.close()

    def flush_once(self, reader: Any) -> bool:
        """Write one batch; False when the warehouse is unreachable or refused it (the events stay)."""
        rows = reader.oldest(BATCH)
        try:
            conn = self._connection()
            if not rows:
                return True
            by_kind: dict[str, list[dict[str, Any]]] = {}
            for _, kind, row in rows:
                by_kind.setdefault(kind, []).append(json.loads(row))
            started = time.perf_counter()
            for kind, batch in by_kind.items():
                warehouse.merge_rows(conn, TABLES[kind], batch)
            self._metrics.warehouse_write(time.perf_counter() - started, {k: len(v) for k, v in by_kind.items()})
        except Exception as exc:  # any driver error: the events stay spooled and the write is retried
            self._metrics.warehouse_error()
            log.warning(
                "warehouse write failed, %d events wait in the spool: %s", self._spool.pending, _first_line(exc)
            )
            self._disconnect()
            return False
        reader.mark_flushed([seq for seq, _, _ in rows])
        return True

    def _connection(self) -> Any:
        if self._conn is None:
            conn = self._connect()
            if self._create_schema:
                warehouse.ensure_schema(conn)
            if self._roster_rows:
                warehouse.merge_rows(conn, PARTNERS, self._roster_rows)
            self._conn = conn
            self.warehouse_up = True
        return self._conn

    def _disconnect(self) -> None:
        self.warehouse_up = False
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken connection may fail too; nothing to do about it
                log.debug("closing the warehouse connection failed", exc_info=True)
            self._conn = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
