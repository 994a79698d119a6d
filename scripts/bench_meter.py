"""Meter benchmark: the real meter (`platformctl meter serve`) on loopback, a raw-socket load generator here.

    .venv/bin/python scripts/bench_meter.py [--callbacks 20000] [--kong-entries 200000] [--memory-events 1000000]
    .venv/bin/python scripts/bench_meter.py --only-sustained [--sustained-seconds 60]

Reports signed Twilio callbacks accepted per second, Kong entries (batches of 100) per second, the p99
acknowledgement latency at a paced 500 callbacks/s, and the RSS of the meter's processes (HTTP process, flusher
process, multiprocessing's resource tracker) before, during and after --memory-events Kong entries, then after a
bounded wait for the warehouse writes to catch up; then the sustained phase: Kong entries as fast as the meter takes
them for --sustained-seconds while the flusher writes to the warehouse, reporting the rate the warehouse writes keep
up with (what the meter sustains indefinitely: acknowledgements beyond it only grow the backlog), the spool's bytes
per event, and what that makes of a 10 GiB volume (backlog room, replay window). Each phase also reports the CPU of
the generator (this process), the meter's two processes and everything else on the machine: on 2 shared cores they
decide the figures. Every phase is bounded in count and in time (--max-seconds, --drain-seconds); the meter and its
spool live in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foundation.naming import twilio_status_callback_path
from tests.services.meter_harness import KONG_TOKEN, Meter, callback, kong_entry, sign


def _request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


async def _send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _run(
    port: int, requests: list[bytes], connections: int, deadline: float, rate: float | None = None
) -> tuple[int, list[float]]:
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for index, request in enumerate(requests):
        queue.put_nowait((index, request))
    ok = 0
    latencies: list[float] = []
    start = time.perf_counter()

    async def worker() -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                try:
                    index, request = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if rate is not None:
                    due = start + index / rate
                    if due > time.perf_counter():
                        await asyncio.sleep(due - time.perf_counter())
                sent = time.perf_counter()
                if await _send(reader, writer, request) == 200:
                    ok += 1
                latencies.append(time.perf_counter() - (start + index / rate if rate else sent))
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return ok, latencies


def _callbacks(meter: Meter, count: int) -> list[bytes]:
    path = twilio_status_callback_path("acme-voice")
    out = []
    for _ in range(count):
        form = callback()
        body = urllib.parse.urlencode(form).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(meter.base + path, form),
        }
        out.append(_request(path, body, headers))
    return out


def _kong(count: int, offset: int = 0) -> list[bytes]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KONG_TOKEN}"}
    template = kong_entry()
    out = []
    for start in range(0, count, 100):
        batch = []
        for i in range(start, min(count, start + 100)):
            entry = dict(template)
            entry["request"] = {**template["request"], "id": f"bench-{offset + i:012d}"}
            batch.append(entry)
        out.append(_request("/kong/http-log", json.dumps(batch).encode(), headers))
    return out


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # the process ended
        pass
    return 0.0


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (the meter and its flusher process)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuShare:
    """CPU seconds of the generator (this process), the meter's HTTP process and its flusher during a phase: on 2
    shared cores the generator's share is part of the figure."""

    def __init__(self, meter_pid: int) -> None:
        self.meter_pid = meter_pid
        self.wall = time.perf_counter()
        self.start = self._sample()

    def _sample(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        pids = _tree(self.meter_pid)
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
        sample = {
            "generator": usage.ru_utime + usage.ru_stime,
            "meter-http": _cpu_seconds(self.meter_pid),
            "flusher": sum(_cpu_seconds(p) for p in pids if p != self.meter_pid),
        }
        sample["other processes"] = busy - sum(sample.values())
        return sample

    def report(self) -> str:
        wall = time.perf_counter() - self.wall
        end = self._sample()
        parts = [f"{k} {(end[k] - self.start[k]) / wall:.0%}" for k in end]
        return f"    CPU over {wall:.1f} s (of one core; 2 cores = 200%): " + ", ".join(parts)


def _arun(coro: Any) -> Any:
    """uvloop (uvicorn's `standard` extra brings it) when present: the generator shares the meter's cores, and
    uvloop roughly halves what its sockets cost."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


VOLUME_GIB = 10
"""The region's spool volume (RuntimeService's claim), for the sustained phase's figures."""


def sustained(meter: Meter, seconds: float, offset: int) -> None:
    """Kong entries at full speed for `seconds`; what the acknowledgements and the warehouse writes each managed."""
    from services.meter.spool import REPLAY_SHARE, VOLUME_SHARE

    assert meter.proc is not None
    pid = meter.proc.pid
    before = meter.metrics()
    cpu = CpuShare(pid)
    t0 = time.perf_counter()
    sent, chunk = 0, 20_000
    while time.perf_counter() - t0 < seconds:
        many = _kong(chunk, offset + sent)
        ok, _ = _arun(_run(meter.port, many, 8, t0 + seconds))
        sent += ok * 100
    elapsed = time.perf_counter() - t0
    after = meter.metrics()

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    flushed = delta('meter_flushed_total{kind="api"}')
    kept = after["meter_spool_replay_events"] + after["meter_spool_depth"]
    per_event = after["meter_spool_used_bytes"] / kept if kept else float("nan")
    volume = VOLUME_GIB * 1024**3 * VOLUME_SHARE
    replay = volume * REPLAY_SHARE / per_event
    rate = flushed / elapsed
    print(
        f"sustained {elapsed:.0f} s: {sent / elapsed:,.0f} acknowledged/s, {rate:,.0f} written to the warehouse/s; "
        f"spool depth {before['meter_spool_depth']:.0f} -> {after['meter_spool_depth']:.0f}"
    )
    print(
        f"    spool: {per_event:.0f} bytes per event; a {VOLUME_GIB} GiB volume holds a backlog of "
        f"{volume / per_event:,.0f} events and a replay window of {replay:,.0f} "
        f"({replay / rate / 60:,.0f} min at {rate:,.0f}/s)"
    )
    print(cpu.report())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callbacks", type=int, default=20_000)
    parser.add_argument("--kong-entries", type=int, default=200_000)
    parser.add_argument("--memory-events", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="Upper bound of each phase.")
    parser.add_argument(
        "--drain-seconds", type=float, default=45.0, help="Wait at most this long for the warehouse to catch up."
    )
    parser.add_argument("--sustained-seconds", type=float, default=60.0)
    parser.add_argument("--only-sustained", action="store_true", help="Run the sustained phase only.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-meter-") as tmp:
        meter = Meter(Path(tmp)).start()
        assert meter.proc is not None
        try:
            if args.only_sustained:
                sustained(meter, args.sustained_seconds, 0)
                return
            pid = meter.proc.pid
            requests = _callbacks(meter, args.callbacks)
            cpu = CpuShare(pid)
            t0 = time.perf_counter()
            ok, _ = _arun(_run(meter.port, requests, args.connections, t0 + args.max_seconds))
            elapsed = time.perf_counter() - t0
            print(f"signed Twilio callbacks: {ok} accepted in {elapsed:.1f} s = {ok / elapsed:,.0f}/s")
            print(cpu.report())

            batches = _kong(args.kong_entries)
            cpu = CpuShare(pid)
            t0 = time.perf_counter()
            ok, _ = _arun(_run(meter.port, batches, min(args.connections, 8), t0 + args.max_seconds))
            elapsed = time.perf_counter() - t0
            print(f"Kong entries (batches of 100): {ok * 100} in {elapsed:.1f} s = {ok * 100 / elapsed:,.0f}/s")
            print(cpu.report())

            paced = _callbacks(meter, 5000)
            cpu = CpuShare(pid)
            t0 = time.perf_counter()
            ok, latencies = _arun(_run(meter.port, paced, 64, t0 + args.max_seconds, rate=500.0))
            latencies.sort()
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
            p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
            print(f"paced 500 callbacks/s: {ok} ok, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
            print(cpu.report())

            def rss() -> str:
                each = {p: _rss_mib(p) for p in _tree(pid)}
                return f"{sum(each.values()):.0f} MiB (HTTP process {each[pid]:.0f})"

            before = rss()
            cpu = CpuShare(pid)
            t0 = time.perf_counter()
            sent, chunk = 0, 100_000
            trajectory: list[str] = []
            for offset in range(0, args.memory_events, chunk):  # generated in chunks: the generator stays small too
                many = _kong(min(chunk, args.memory_events - offset), args.kong_entries + offset)
                ok, _ = _arun(_run(meter.port, many, 8, t0 + args.max_seconds * 3))
                sent += ok * 100
                each = [_rss_mib(p) for p in _tree(pid)]
                trajectory.append(f"{sum(each):.0f}/{each[0]:.0f}")
            elapsed = time.perf_counter() - t0
            print(
                f"memory: RSS of the meter's processes {before} before, {rss()} after {sent:,} more events "
                f"({sent / elapsed:,.0f}/s)"
            )
            print(f"    RSS after each 100,000, all processes/HTTP process (MiB): {' '.join(trajectory)}")
            print(cpu.report())
            # The acknowledgements ran ahead of the warehouse writes; give the flusher a bounded while to catch up,
            # so the memory figure covers the warehouse side of the events too (or says how much is left).
            depth = start_depth = meter.metrics()["meter_spool_depth"]
            cpu = CpuShare(pid)
            drain_end = time.perf_counter() + args.drain_seconds
            while depth and time.perf_counter() < drain_end:
                time.sleep(1.0)
                depth = meter.metrics()["meter_spool_depth"]
            print(
                f"spool depth (not yet in the warehouse): {start_depth:.0f}, "
                f"after up to {args.drain_seconds:.0f} s more: {depth:.0f}"
            )
            print(f"    RSS of the meter's processes then: {rss()}")
            print(cpu.report())
            sustained(meter, args.sustained_seconds, args.kong_entries + args.memory_events)
        finally:
            meter.stop()


if __name__ == "__main__":
    main()
