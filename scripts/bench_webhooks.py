"""Webhooks benchmark: the real service (`platformctl webhooks serve`) on loopback, a fast receiver and the event
producer here (one asyncio process).

    .venv/bin/python scripts/bench_webhooks.py [--messages 20000] [--endpoints 4] [--per-endpoint 16]
                                               [--rate 200] [--seconds 10]

Phase 1, deliveries per second: --messages / --endpoints events (each fanned out to every endpoint) are posted
while the receiver holds its answers back, so all but the attempts in flight wait in the service's store; then the
receiver answers (204 at once) and the rate is deliveries over the time until the last arrived (dispatch only: store
reads, signing, HTTP, each outcome's commit). The acceptance rate of POST /events is printed too.

Phase 2, latency: events at a paced --rate for --seconds; for each, the time from sending
POST /events to the first delivery reaching the receiver (p50/p99). Reports the CPU of the service and of this
process. The service and its store live in a temporary directory removed at the end; every phase is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.services.webhooks_harness import EVENT_TOKEN, KONG_TOKEN, Service, event


class FastReceiver:
    """HTTP/1.1 keep-alive, answers 204 at once; notes when each event id first arrived."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.count = 0
        self.gate = asyncio.Event()
        """Requests wait for it: closed, the service's slots fill and the rest of the messages queue in its store."""
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                await self.gate.wait()
                now = time.perf_counter()
                self.count += 1
                event_id = orjson.loads(body)["id"]
                self.first.setdefault(event_id, now)
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()


def _request(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: application/json\r\n{head}\r\n"
    ).encode() + body


async def _send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return int(head.split(b" ", 2)[1]), await reader.readexactly(length)


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main(args: argparse.Namespace) -> None:
    receiver = FastReceiver()
    await receiver.start()
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        service = Service(Path(tmp), WEBHOOKS_TIME_SCALE="0.001")
        service.extra_args = ["--per-endpoint", str(args.per_endpoint)]
        service.start()
        assert service.proc is not None
        try:
            owner = {"authorization": f"Bearer {KONG_TOKEN}", "x-consumer-custom-id": "acme-voice"}
            producer = {"authorization": f"Bearer {EVENT_TOKEN}"}
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            ids = []
            for n in range(args.endpoints):
                body = orjson.dumps({"url": f"http://127.0.0.1:{receiver.port}/hook/{n}"})
                status, answer = await _send(reader, writer, _request("POST", "/v1/webhooks/endpoints", body, owner))
                assert status == 201, answer
                ids.append(orjson.loads(answer)["id"])

            async def post_all(docs: list[dict[str, Any]], connections: int) -> None:
                queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
                for doc in docs:
                    queue.put_nowait(doc)

                async def worker() -> None:
                    r, w = await asyncio.open_connection("127.0.0.1", service.port)
                    while not queue.empty():
                        doc = queue.get_nowait()
                        status, _ = await _send(r, w, _request("POST", "/events", orjson.dumps(doc), producer))
                        assert status == 202, status
                    w.close()

                await asyncio.gather(*(worker() for _ in range(connections)))

            per_endpoint_events = args.messages // args.endpoints
            queued = per_endpoint_events * args.endpoints
            started = time.perf_counter()
            await post_all([event() for _ in range(per_endpoint_events)], 64)
            posted = time.perf_counter() - started
            print(
                f"queued {per_endpoint_events} events x {args.endpoints} endpoints in {posted:.2f} s "
                f"({per_endpoint_events / posted:,.0f} events/s accepted, 64 connections)"
            )
            cpu_service, cpu_self = _cpu(service.proc.pid), _own_cpu()
            started = time.perf_counter()
            receiver.gate.set()
            deadline = started + args.max_seconds
            while receiver.count < queued and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            print(
                f"phase 1: {receiver.count} deliveries in {elapsed:.2f} s = {receiver.count / elapsed:,.0f}/s "
                f"(service CPU {100 * (_cpu(service.proc.pid) - cpu_service) / elapsed:.0f}%, "
                f"bench {100 * (_own_cpu() - cpu_self) / elapsed:.0f}%)"
            )

            # Phase 2: paced events, one endpoint, event -> first delivery.
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)  # the first one idled out
            for endpoint_id in ids[1:]:
                await _send(reader, writer, _request("DELETE", f"/v1/webhooks/endpoints/{endpoint_id}", b"", owner))
            sent: dict[str, float] = {}
            total = int(args.rate * args.seconds)
            started = time.perf_counter()
            for n in range(total):
                target = started + n / args.rate
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                doc = event()
                sent[str(doc["id"])] = time.perf_counter()
                status, _ = await _send(reader, writer, _request("POST", "/events", orjson.dumps(doc), producer))
                assert status == 202
            deadline = time.perf_counter() + 30
            while not set(sent) <= set(receiver.first) and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            latencies = sorted(receiver.first[i] - t for i, t in sent.items() if i in receiver.first)
            p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
            print(
                f"phase 2: {len(latencies)}/{total} events at {args.rate}/s, event -> first attempt "
                f"p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {latencies[-1] * 1000:.1f} ms"
            )
            writer.close()
        finally:
            service.stop()
            assert receiver.server is not None
            receiver.server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--endpoints", type=int, default=4)
    parser.add_argument("--per-endpoint", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    asyncio.run(main(parser.parse_args()))
