"""Run the real meter (`platformctl meter serve`) as a subprocess on loopback, and talk to it like Twilio and Kong.

The meter looks up each partner's subaccount token from Twilio's Accounts API: a loopback fake of it
(tests/components/twilio_fake.py) runs in the test process, holding a subaccount `pctl:<id>` with its own token
for every partner in partners/; callbacks are signed with that token, as Twilio signs a subaccount's callbacks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from foundation.naming import twilio_subaccount_name
from tests.components.twilio_fake import FakeTwilio, serve

ROOT = Path(__file__).resolve().parents[2]
MASTER_SID = "AC" + "f" * 32
MASTER_TOKEN = "test-master-token-" + "x" * 14
"""The master account's credentials (the meter's TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN)."""
TWILIO_TOKEN = MASTER_TOKEN
KONG_TOKEN = "test-kong-token"
PLATFORMCTL = str(Path(sys.executable).parent / "platformctl")
LOOPBACK_TLS = httpx.create_ssl_context()
"""The TLS settings of the tests' one-off requests (`httpx.get(..., verify=LOOPBACK_TLS)`), made once: without it
every httpx.get() and Client() builds its own context and loads the CA bundle (~20 ms of CPU), which the readiness
and metrics polls did hundreds of times per module, though these requests are plain http to loopback."""
_twilio: tuple[FakeTwilio, str] | None = None


def twilio() -> tuple[FakeTwilio, str]:
    """The loopback Twilio API shared by this test process's meters, and its origin (started on first use)."""
    global _twilio
    if _twilio is None:
        fake = FakeTwilio(MASTER_SID, MASTER_TOKEN)
        for spec in sorted((ROOT / "partners").glob("*.yaml")):
            if spec.stem not in ("tiers", "prices"):
                fake.add_subaccount(twilio_subaccount_name(spec.stem))
        fake.add_subaccount(twilio_subaccount_name("acme-voice"), status="closed")  # an old one, closed: never used
        server = serve(fake)
        _twilio = fake, f"http://127.0.0.1:{server.server_address[1]}"
    return _twilio


def subaccount(partner: str) -> tuple[str, str]:
    """(SID, auth token) of the partner's active subaccount in the fake."""
    fake, _ = twilio()
    for account in fake.accounts.values():
        if account["friendly_name"] == twilio_subaccount_name(partner) and account["status"] == "active":
            return account["sid"], account["auth_token"]
    raise KeyError(partner)


def meter_env(origin: str | None = None) -> dict[str, str]:
    """The environment a meter runs with: master credentials, the Kong token, the fake's origin."""
    return {
        "TWILIO_ACCOUNT_SID": MASTER_SID,
        "TWILIO_AUTH_TOKEN": MASTER_TOKEN,
        "METER_KONG_TOKEN": KONG_TOKEN,
        "PLATFORMCTL_TWILIO_API_URL": origin or twilio()[1],
    }


def repo_roster(region: str | None = None) -> dict[str, Any]:
    """The roster the meter reads from PARTNERS after `platformctl warehouse sync` of this repository."""
    from decimal import Decimal

    from fleet.repo import Repo
    from platformctl.warehouse_sync import terms_rows
    from services.meter.roster import Partner

    return {
        r["PARTNER_ID"]: Partner(
            r["PARTNER_ID"],
            r["TIER"],
            r["CURRENCY"],
            Decimal(r["RATE"]),
            r["BASE_FEE_MINOR"],
            r["MONTHLY_MINUTES_QUOTA"],
        )
        for r in terms_rows(Repo(ROOT))
        if r["OFFBOARDED_ON"] is None and region in (None, r["HOME_REGION"])
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Meter:
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        warehouse: str | None = None,
        spool: Path | None = None,
        **extra: str,
    ) -> None:
        self.workdir = workdir
        self.spool = spool or workdir / "spool.db"
        self.port = port or free_port()
        self.warehouse = warehouse or f"local:{workdir / 'warehouse'}"
        self.base = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"meter-{self.port}.log"

    def start(self, env: dict[str, str] | None = None, wait: bool = True, fd_limit: int | None = None) -> Meter:
        args = [PLATFORMCTL, "--root", str(ROOT), "meter", "serve", "--port", str(self.port)]
        args += ["--warehouse", self.warehouse, "--spool", str(self.spool)]
        for key, value in self.extra.items():
            args += [f"--{key.replace('_', '-')}", value]
        environment = {**os.environ, **meter_env(), **(env or {})}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=self.workdir,
                preexec_fn=None if fd_limit is None else functools.partial(_limit_fds, fd_limit),
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"meter exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1, verify=LOOPBACK_TLS).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"meter not ready: {self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 35.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"{self.base}/metrics", timeout=5, verify=LOOPBACK_TLS).text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def flushers(self) -> list[int]:
        """Pids of the meter's flusher processes (not multiprocessing's resource tracker), from /proc."""
        assert self.proc is not None
        found = []
        for pid in children_of(self.proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                found.append(pid)
        return found

    def wait_flushed(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.metrics()["meter_spool_depth"] == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"spool not flushed: {self.metrics()}")


def _limit_fds(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def seize_warehouse(meter: Meter, timeout: float = 20.0) -> Any:
    """Take the embedded warehouse from a running meter: kill its flusher and open the DuckDB file before the
    restarted one does (the supervisor waits a second first). Until the connection closes the warehouse is down for
    the meter. (`platformctl meter serve` refuses to start on a warehouse in use, so it cannot be taken earlier.)"""
    from services.warehouse import connect

    assert meter.warehouse.startswith("local:")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in meter.flushers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            return connect(meter.warehouse)
        except Exception:
            time.sleep(0.05)
    raise AssertionError("could not take the warehouse from the meter")


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def callback(
    sid: str | None = None,
    duration: int | str = 61,
    when: dt.datetime | None = None,
    partner: str = "acme-voice",
    **fields: str,
) -> dict[str, str]:
    stamp = when or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    form = {
        "AccountSid": subaccount(partner)[0],
        "CallSid": sid or call_sid(),
        "CallStatus": "completed",
        "CallDuration": str(duration),
        "To": "+4930123456",
        "From": "+4917012345678",
        "Direction": "inbound",
        "Timestamp": format_datetime(stamp),
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "3",
    }
    form.update(fields)
    return form


def sign(url: str, form: dict[str, Any], token: str | None = None, partner: str = "acme-voice") -> str:
    """X-Twilio-Signature as Twilio sends it: by default with the partner's subaccount token."""
    return str(RequestValidator(token or subaccount(partner)[1]).compute_signature(url, form))


def post_callback(
    client: httpx.Client, meter: Meter, partner: str, form: dict[str, str], signature: str | None = None
) -> httpx.Response:
    """The callback as the partner's subaccount sends it: its AccountSid, signed with its token."""
    path = f"/twilio/{partner}/status"
    form = {**form, "AccountSid": subaccount(partner)[0]}
    return client.post(
        f"{meter.base}{path}",
        data=form,
        headers={
            "X-Twilio-Signature": signature if signature is not None else sign(meter.base + path, form, None, partner)
        },
    )


def kong_entry(
    partner: str = "acme-voice", status: int = 200, request_id: str | None = None, **over: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "consumer": {"id": str(uuid.uuid4()), "username": f"partner-{partner}", "custom_id": partner},
        "route": {"name": "rest-v2", "id": str(uuid.uuid4())},
        "service": {"name": "rest"},
        "request": {"id": request_id or uuid.uuid4().hex, "method": "GET", "uri": "/v2/calls", "size": 120},
        "response": {"status": status, "size": 512},
        "started_at": int(time.time() * 1000) - 1000,
        "client_ip": "203.0.113.7",
        "latencies": {"kong": 1, "proxy": 20, "request": 21},
    }
    entry.update(over)
    return entry


def post_kong(client: httpx.Client, meter: Meter, body: Any, token: str = KONG_TOKEN) -> httpx.Response:
    return client.post(f"{meter.base}/kong/http-log", json=body, headers={"Authorization": f"Bearer {token}"})


def warehouse_rows(directory: Path, sql: str) -> list[tuple[Any, ...]]:
    from services.warehouse import connect

    conn = connect(f"local:{directory}")
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return list(cur.fetchall())
    finally:
        conn.close()
