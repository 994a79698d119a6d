"""Issue 17, end to end, from the image's environment: the meter and the payouts job as the image runs them
(`platform-services` of `./dev image-env`, started in an empty folder with no checkout on sys.path), against
loopback stand-ins of what they talk to:

- Twilio: tests/components/twilio_fake.py (the Accounts API: a master account and one subaccount per partner, each
  with its own auth token; callbacks are signed with the subaccount's token, as Twilio does);
- Snowflake: fakesnow's server (`python -m fakesnow -s`, the real snowflake-connector-python speaking its REST
  protocol over loopback http), so the meter, the payouts job and `platformctl warehouse sync` share one warehouse
  at the same time, as they do deployed;
- Kong: http-log batches with the bearer token, as Kong's plugin posts them;
- Stripe and S3: see the payouts part.

A partner is onboarded after the environment was built and after the meter started (`platformctl warehouse sync`
of a spec written by the test): it is metered without a restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from foundation.naming import twilio_subaccount_name
from scripts.fleet import copy_repo
from services import warehouse
from tests.components.twilio_fake import FakeTwilio, serve
from tests.services.image_env import ROOT, ImageEnv
from tests.services.meter_harness import KONG_TOKEN, MASTER_SID, MASTER_TOKEN, callback, free_port, kong_entry, sign

REGION = "eu-central"
DATABASE = "PLATFORM_EU_CENTRAL"
LATE = "late-voice"
LATE_SPEC = f"""id: {LATE}
company_name: Late Voice GmbH
tier: starter
domain: voice.late.example
home_region: {REGION}
countries: [DE]
contact: {{name: Max Late, email: ops@late.example}}
branding:
  primary_color: "#112233"
  secondary_color: "#445566"
  font_family: Inter
  logo_url: https://cdn.late.example/logo.svg
  voice_greeting: Thanks for calling Late.
  voice_personality: friendly
billing: {{currency: EUR, payout_method: stripe_connect}}
"""


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class World:
    image: ImageEnv
    repo: Path
    """A copy of the repository: `platformctl warehouse sync` reads its specs (the image never does)."""
    warehouse_url: str
    key_env: dict[str, str]
    twilio: FakeTwilio
    twilio_origin: str
    workdir: Path

    def connect(self) -> Any:
        saved = dict(os.environ)
        os.environ.update(self.key_env)
        try:
            return warehouse.connect(self.warehouse_url)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql.format(db=DATABASE))
            return list(cur.fetchall())
        finally:
            conn.close()

    def sync(self) -> str:
        """`platformctl warehouse sync` of the repository copy (the tool, from the development environment)."""
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "platformctl"),
                "--root",
                str(self.repo),
                "warehouse",
                "sync",
                "--warehouse",
                self.warehouse_url,
            ],
            env={**os.environ, **self.key_env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"port {port} not open: {log.read_text()}")


@pytest.fixture(scope="module")
def world(image: ImageEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("e2e")
    port = free_port()
    log = workdir / "fakesnow.log"
    with log.open("wb") as out:
        snow = subprocess.Popen(
            [sys.executable, "-m", "fakesnow", "-s", "-p", str(port)], cwd=workdir, stdout=out, stderr=out
        )
    twilio = FakeTwilio(MASTER_SID, MASTER_TOKEN)
    twilio.add_subaccount(twilio_subaccount_name("acme-voice"))
    server = serve(twilio)
    try:
        _wait_port(port, snow, log)
        url = (
            f"snowflake://fakesnow/{DATABASE}?user=METER&role=PLATFORM_EU_CENTRAL_LOADER&warehouse=W"
            f"&host=127.0.0.1&port={port}&protocol=http"
        )
        world = World(
            image=image,
            repo=copy_repo(ROOT, workdir / "repo"),
            warehouse_url=url,
            key_env={"SNOWFLAKE_PRIVATE_KEY": _pem()},
            twilio=twilio,
            twilio_origin=f"http://127.0.0.1:{server.server_address[1]}",
            workdir=workdir,
        )
        conn = world.connect()
        try:
            warehouse.ensure_schema(conn)  # what the region's SnowflakeWarehouse component deploys
        finally:
            conn.close()
        yield world
    finally:
        server.shutdown()
        snow.send_signal(signal.SIGINT)
        try:
            snow.wait(10)
        except subprocess.TimeoutExpired:
            snow.kill()
            snow.wait()


class ImageMeter:
    """`platform-services meter serve` from the image environment, in an empty folder."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.cwd = world.workdir / f"meter-cwd-{self.port}"
        self.cwd.mkdir()
        self.spool = world.workdir / "spool" / "spool.db"
        self.log = world.workdir / f"meter-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ImageMeter:
        env = self.world.image.environ(
            TWILIO_ACCOUNT_SID=MASTER_SID,
            TWILIO_AUTH_TOKEN=MASTER_TOKEN,
            METER_KONG_TOKEN=KONG_TOKEN,
            PLATFORMCTL_TWILIO_API_URL=self.world.twilio_origin,
            **self.world.key_env,
        )
        args = [str(self.world.image.script), "meter", "serve", "--port", str(self.port), "--region", REGION]
        args += ["--warehouse", self.world.warehouse_url, "--public-url", self.base, "--spool", str(self.spool)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, cwd=self.cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"meter exited {self.proc.returncode}: {self.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise AssertionError(f"meter not ready: {self.log.read_text()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def spool_depth(self) -> float:
        for line in httpx.get(f"{self.base}/metrics", timeout=5).text.splitlines():
            if line.startswith("meter_spool_depth "):
                return float(line.split()[1])
        raise AssertionError("no meter_spool_depth")

    def wait_flushed(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.spool_depth() == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"spool not flushed: {self.log.read_text()[-3000:]}")


def subaccount_of(world: World, partner: str) -> tuple[str, str]:
    for account in world.twilio.accounts.values():
        if account["friendly_name"] == twilio_subaccount_name(partner) and account["status"] == "active":
            return account["sid"], account["auth_token"]
    raise KeyError(partner)


def post_call(
    client: httpx.Client,
    meter: ImageMeter,
    partner: str,
    form: dict[str, str],
    token: str | None = None,
    account: str | None = None,
) -> httpx.Response:
    """A status callback as the partner's subaccount sends it (or as `account`/`token` sign it, for forgeries)."""
    sid, own_token = subaccount_of(meter.world, partner)
    form = {**form, "AccountSid": account or sid}
    url = f"{meter.base}/twilio/{partner}/status"
    return client.post(url, data=form, headers={"X-Twilio-Signature": sign(url, form, token or own_token)})


def payable_moment() -> dt.datetime:
    """Noon of the last day of the month `payouts run --period previous` pays now (the close window passed)."""
    from services.payouts import money

    period = money.latest_payable(dt.datetime.now(dt.UTC))
    return money.period_end(period) - dt.timedelta(hours=12)


def expected_gross_minor(durations: list[int], rate: Decimal) -> int:
    """Billed minutes (each call rounded up) x the per-minute rate, rounded half-even to cents once."""
    total = sum(math.ceil(seconds / 60) for seconds in durations) * rate
    return int((total * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def test_the_image_meters_partners_by_subaccount_including_one_onboarded_later(world: World) -> None:
    world.sync()
    meter = ImageMeter(world).start()
    when = payable_moment()
    acme_durations = [61, 59, 600, 1, 3599] * 8
    late_durations = [121, 7, 60, 61] * 10
    acme_forms = [callback(duration=d, when=when) for d in acme_durations]
    late_forms = [callback(duration=d, when=when) for d in late_durations]
    try:
        with httpx.Client(timeout=10) as client:
            # The late partner is not in PARTNERS yet: 404, whatever its signature.
            world.twilio.add_subaccount(twilio_subaccount_name(LATE))
            assert post_call(client, meter, LATE, late_forms[0]).status_code == 404
            # Onboarded now: its spec is written and `warehouse sync` upserts its row (its stack's `up` deployed).
            (world.repo / "partners" / f"{LATE}.yaml").write_text(LATE_SPEC)
            assert f"{LATE}: new" in world.sync()
            time.sleep(5.5)  # past the unknown-partner refresh limit set off by the 404 above
            first = post_call(client, meter, LATE, late_forms[0])
            assert first.status_code == 200, first.text

            # Signed by the master account, or by another partner's subaccount: 403, nothing metered.
            acme_sid, acme_token = subaccount_of(world, "acme-voice")
            forged = callback(when=when)
            assert post_call(client, meter, LATE, forged, token=MASTER_TOKEN, account=MASTER_SID).status_code == 403
            assert post_call(client, meter, LATE, forged, token=acme_token, account=acme_sid).status_code == 403
            assert post_call(client, meter, LATE, forged, token=acme_token).status_code == 403

            # Half the calls and a Kong batch, then kill -9 mid-stream, restart, and everything sent again (Twilio
            # retries what was not answered 200; here everything is resent, the answered ones must count once).
            kong = [kong_entry("acme-voice") for _ in range(30)] + [kong_entry(LATE) for _ in range(20)]
            answered: set[str] = set()
            stop_at = len(acme_forms) // 2
            for form in acme_forms[:stop_at] + late_forms[1:10]:
                if post_call(client, meter, "acme-voice" if form in acme_forms else LATE, form).status_code == 200:
                    answered.add(form["CallSid"])
            batch = client.post(
                f"{meter.base}/kong/http-log", json=kong[:25], headers={"Authorization": f"Bearer {KONG_TOKEN}"}
            )
            assert batch.status_code == 200 and batch.json()["accepted"] == 25
            sender_errors: list[BaseException] = []

            def more() -> None:
                with httpx.Client(timeout=5) as other:
                    for form in acme_forms[stop_at:]:
                        try:
                            if post_call(other, meter, "acme-voice", form).status_code == 200:
                                answered.add(form["CallSid"])
                        except httpx.HTTPError as exc:
                            sender_errors.append(exc)

            sender = threading.Thread(target=more)
            sender.start()
            time.sleep(0.05)
            meter.kill9()
            sender.join(30)
    finally:
        if meter.proc and meter.proc.poll() is None:
            meter.stop()

    meter = ImageMeter(world)
    meter.spool = world.workdir / "spool" / "spool.db"
    meter.start()
    try:
        with httpx.Client(timeout=10) as client:
            for form in acme_forms:
                assert post_call(client, meter, "acme-voice", form).status_code == 200
            for form in late_forms:
                assert post_call(client, meter, LATE, form).status_code == 200
            for start in (0, 25):
                batch = client.post(
                    f"{meter.base}/kong/http-log",
                    json=kong[start : start + 25],
                    headers={"Authorization": f"Bearer {KONG_TOKEN}"},
                )
                assert batch.status_code == 200, batch.text
            meter.wait_flushed()
    finally:
        assert meter.stop() == 0

    period = f"{when:%Y-%m}"
    counts = dict(
        world.rows(
            "SELECT PARTNER_ID, COUNT(*) FROM {db}.RAW.USAGE_EVENTS WHERE PERIOD = '" + period + "' GROUP BY PARTNER_ID"
        )
    )
    assert counts == {"acme-voice": len(acme_forms), LATE: len(late_forms)}, "each call once: nothing lost or twice"
    assert world.rows("SELECT COUNT(*), COUNT(DISTINCT EVENT_ID) FROM {db}.RAW.USAGE_EVENTS") == [
        (len(acme_forms) + len(late_forms),) * 2
    ]
    api = dict(world.rows("SELECT PARTNER_ID, COUNT(*) FROM {db}.RAW.API_REQUESTS GROUP BY PARTNER_ID"))
    assert api == {"acme-voice": 30, LATE: 20}
    gross = dict(
        world.rows("SELECT PARTNER_ID, GROSS_MINOR FROM {db}.ANALYTICS.USAGE_BY_PERIOD WHERE PERIOD = '" + period + "'")
    )
    assert {k: int(v) for k, v in gross.items()} == {
        "acme-voice": expected_gross_minor(acme_durations, Decimal("0.015")),
        LATE: expected_gross_minor(late_durations, Decimal("0.02")),
    }
    # Nothing of the meter's was written where it was started.
    assert not any(meter.cwd.iterdir())
    shutil.rmtree(meter.cwd)
