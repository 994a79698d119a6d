"""Issue 17, end to end, from the image's environment: the meter and the payouts job as the image runs them
(`platform-services` of `./dev image-env`, started in an empty folder with no checkout on sys.path), against
loopback stand-ins of what they talk to:

- Twilio: tests/components/twilio_fake.py (the Accounts API: a master account and one subaccount per partner, each
  with its own auth token; callbacks are signed with the subaccount's token, as Twilio does);
- Snowflake: fakesnow's server (`python -m fakesnow -s`, the real snowflake-connector-python speaking its REST
  protocol over loopback http), so the meter, the payouts job and `platformctl warehouse sync` share one warehouse
  at the same time, as they do deployed;
- Kong: http-log batches with the bearer token, as Kong's plugin posts them;
- Stripe: tests/services/stripe_fake.py (Express accounts whose `transfers` capability is inactive until the
  Account Link is completed; Idempotency-Key replay; injected 500s and dropped answers);
- S3: moto behind a proxy that answers as AWS does to a caller without s3:ListBucket (403 for a missing key).

A partner is onboarded after the environment was built and after the meter started (`platformctl warehouse sync`
of a spec written by the test): it is metered without a restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from foundation.naming import twilio_subaccount_name
from scripts.fleet import copy_repo
from services import warehouse
from services.meter.roster import UNKNOWN_PARTNER_REFRESH_SECONDS
from tests.components.twilio_fake import FakeTwilio, serve
from tests.services.image_env import ROOT, ImageEnv
from tests.services.meter_harness import KONG_TOKEN, MASTER_SID, MASTER_TOKEN, callback, free_port, kong_entry, sign
from tests.services.payouts.test_statements import _AwsLikeS3Proxy, _ProxyHandler
from tests.services.stripe_fake import TEST_KEY, FakeStripe, StripeServer

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
    stripe: FakeStripe
    s3_proxy: _AwsLikeS3Proxy
    moto_endpoint: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    """Every meter started: none outlives the module, whatever failed."""

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

    def platformctl(self, *args: str) -> str:
        """The tool, from the development environment, on the repository copy."""
        result = subprocess.run(
            [str(Path(sys.executable).parent / "platformctl"), "--root", str(self.repo), *args],
            env={
                **os.environ,
                **self.key_env,
                "PYTHONPATH": str(ROOT),
                "STRIPE_API_KEY": TEST_KEY,
                "STRIPE_API_BASE": self.stripe.base,
            },
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def sync(self) -> str:
        """`platformctl warehouse sync`: what each partner stack's `up` does to PARTNERS, from the repository."""
        return self.platformctl("warehouse", "sync", "--warehouse", self.warehouse_url)

    def payouts(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """`platform-services payouts run --period previous` from the image environment, as the CronJob runs it."""
        cwd = self.workdir / f"payouts-cwd-{time.monotonic_ns()}"
        cwd.mkdir()
        env = self.image.environ(
            STRIPE_API_KEY=TEST_KEY,
            STRIPE_API_BASE=self.stripe.base,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="eu-central-1",
            AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{self.s3_proxy.server_address[1]}",
            **self.key_env,
        )
        args = [str(self.image.script), "payouts", "run", "--period", "previous", "--region", REGION]
        args += ["--warehouse", self.warehouse_url, "--statements", "s3://stmts/statements", "--json", *extra]
        result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert not any(cwd.iterdir()), "the job writes nothing where it runs"
        return result

    def statement(self, period: str, partner: str) -> dict[str, Any]:
        s3 = boto3.client(
            "s3",
            endpoint_url=self.moto_endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="eu-central-1",
        )
        body = s3.get_object(Bucket="stmts", Key=f"statements/{period}/{partner}.json")["Body"].read()
        return dict(json.loads(body))


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
    stack = contextlib.ExitStack()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        stripe = stack.enter_context(StripeServer())
        moto_endpoint, proxy = stack.enter_context(_aws_like_s3())
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
            stripe=stripe,
            s3_proxy=proxy,
            moto_endpoint=moto_endpoint,
            processes=processes,
        )
        conn = world.connect()
        try:
            warehouse.ensure_schema(conn)  # what the region's SnowflakeWarehouse component deploys
        finally:
            conn.close()
        yield world
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        stack.close()
        server.shutdown()
        snow.send_signal(signal.SIGINT)
        try:
            snow.wait(10)
        except subprocess.TimeoutExpired:
            snow.kill()
            snow.wait()


@contextlib.contextmanager
def _aws_like_s3() -> Iterator[tuple[str, _AwsLikeS3Proxy]]:
    """moto's server with a versioned bucket `stmts`, behind the proxy that refuses like AWS (see its docstring)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    proxy = _AwsLikeS3Proxy(("127.0.0.1", 0), _ProxyHandler)
    proxy.upstream = f"127.0.0.1:{port}"
    proxy.list_bucket = True
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        httpx.post(f"{endpoint}/moto-api/reset", timeout=10)
        admin = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="eu-central-1",
        )
        admin.create_bucket(Bucket="stmts", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        admin.put_bucket_versioning(Bucket="stmts", VersioningConfiguration={"Status": "Enabled"})
        yield endpoint, proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)
        moto.stop()


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
        self.world.processes.append(self.proc)
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


LINK = re.compile(r"onboarding link[^:]*: (\S+)")


def connect_stripe(world: World, partner: str) -> tuple[str, str]:
    """`platformctl billing connect PARTNER --yes` against the Stripe fake: (account id, onboarding link)."""
    out = world.platformctl("billing", "connect", partner, "--yes")
    link = LINK.search(out)
    assert link, out
    account = next(a["id"] for a in world.stripe.accounts.values() if a["metadata"].get("partner") == partner)
    assert world.stripe.accounts[account]["capabilities"]["transfers"] == "inactive"
    return account, link.group(1)


def complete_onboarding(link: str) -> None:
    """The partner finishes Stripe's hosted onboarding (on the fake: visiting the Account Link)."""
    assert httpx.get(link, follow_redirects=False, timeout=10).status_code == 302


def run_payouts(world: World) -> tuple[int, dict[str, Any], str]:
    result = world.payouts()
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, report, result.stderr


def outcomes(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(partner, period) -> status: a run settles the period it is given and any earlier one left unsettled."""
    return {(o["partner"], o["period"]): o["status"] for o in report["partners"]}


# Totals chosen to test the rounding: acme-voice bills 591 minutes at 0.015 EUR = 8.865 EUR, half-even 8.86 (half-up
# would say 8.87); its 30% share is 265.8 cents, paid as 265 (floor). late-voice: 820 minutes at 0.02 = 16.40 EUR,
# 20% = 328 cents.
ACME_DURATIONS = [61, 59, 600, 3599] * 8 + [1] * 7
LATE_DURATIONS = [1800, 2400, 600, 61] * 10
ACME_GROSS, ACME_PAYOUT = 886, 265
LATE_GROSS, LATE_PAYOUT = 1640, 328


def test_issue_17_end_to_end_from_the_image_environment(world: World) -> None:
    acme_account, acme_link = connect_stripe(world, "acme-voice")
    complete_onboarding(acme_link)
    world.sync()
    when = payable_moment()
    period = f"{when:%Y-%m}"
    acme_forms = [callback(duration=d, when=when) for d in ACME_DURATIONS]
    late_forms = [callback(duration=d, when=when) for d in LATE_DURATIONS]
    kong = [kong_entry("acme-voice") for _ in range(30)] + [kong_entry(LATE) for _ in range(20)]

    meter = ImageMeter(world).start()
    try:
        with httpx.Client(timeout=10) as client:
            # The late partner has a Twilio subaccount but is not in PARTNERS yet: 404, whatever its signature.
            world.twilio.add_subaccount(twilio_subaccount_name(LATE))
            assert post_call(client, meter, LATE, late_forms[0]).status_code == 404
            refused_at = time.monotonic()  # the meter asked for its refresh before it answered 404
            # Onboarded now, after the image environment was built and the meter started: spec and stack file
            # written by `onboard-partner`, a Stripe account opened (onboarding not finished), and its terms row
            # upserted (what its stack's `up` does). No image rebuild, no meter restart.
            spec = world.workdir / f"{LATE}.yaml"
            spec.write_text(LATE_SPEC)
            world.platformctl("onboard-partner", str(spec), "--no-apply")
            late_account, late_link = connect_stripe(world, LATE)
            assert f"{LATE}: new" in world.sync()
            # Past the unknown-partner refresh limit the 404 above set off (roster.py), counted from that 404 (the
            # onboarding above took part of it; CLOCK_MONOTONIC is the machine's, the meter's clock too).
            time.sleep(max(0.0, refused_at + UNKNOWN_PARTNER_REFRESH_SECONDS + 0.5 - time.monotonic()))
            first = post_call(client, meter, LATE, late_forms[0])
            assert first.status_code == 200, first.text

            # Signed by the master account, or by the other partner's subaccount: 403, nothing metered.
            acme_sid, acme_token = subaccount_of(world, "acme-voice")
            forged = callback(when=when)
            assert post_call(client, meter, LATE, forged, token=MASTER_TOKEN, account=MASTER_SID).status_code == 403
            assert post_call(client, meter, LATE, forged, token=acme_token, account=acme_sid).status_code == 403
            assert post_call(client, meter, LATE, forged, token=acme_token).status_code == 403
            assert (
                post_call(client, meter, "acme-voice", forged, token=subaccount_of(world, LATE)[1]).status_code == 403
            )

            # Half the calls and a Kong batch, then kill -9 while callbacks are in flight.
            stop_at = len(acme_forms) // 2
            for form in acme_forms[:stop_at]:
                assert post_call(client, meter, "acme-voice", form).status_code == 200
            for form in late_forms[1:10]:
                assert post_call(client, meter, LATE, form).status_code == 200
            batch = client.post(
                f"{meter.base}/kong/http-log", json=kong[:25], headers={"Authorization": f"Bearer {KONG_TOKEN}"}
            )
            assert batch.status_code == 200 and batch.json()["accepted"] == 25

            def more() -> None:
                with httpx.Client(timeout=5) as other:
                    for form in acme_forms[stop_at:]:
                        with contextlib.suppress(httpx.HTTPError):
                            post_call(other, meter, "acme-voice", form)

            sender = threading.Thread(target=more)
            sender.start()
            time.sleep(0.05)
            meter.kill9()
            sender.join(30)
    finally:
        if meter.proc and meter.proc.poll() is None:
            meter.stop()

    # Restarted on the same spool; Twilio and Kong send again what was not answered (here: everything, so what
    # was answered before the kill must count once).
    meter = ImageMeter(world).start()
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
        stopped = meter.stop()
    assert stopped in (0, -signal.SIGTERM), meter.log.read_text()[-3000:]  # uvicorn re-raises the signal it drained on
    assert not any(meter.cwd.iterdir()), "the meter writes nothing where it was started"

    counts = dict(
        world.rows(f"SELECT PARTNER_ID, COUNT(*) FROM {{db}}.RAW.USAGE_EVENTS WHERE PERIOD = '{period}' GROUP BY 1")
    )
    assert counts == {"acme-voice": len(acme_forms), LATE: len(late_forms)}, "each call once: nothing lost or twice"
    assert world.rows("SELECT COUNT(*), COUNT(DISTINCT EVENT_ID) FROM {db}.RAW.USAGE_EVENTS") == [
        (len(acme_forms) + len(late_forms),) * 2
    ]
    assert dict(world.rows("SELECT PARTNER_ID, COUNT(*) FROM {db}.RAW.API_REQUESTS GROUP BY 1")) == {
        "acme-voice": 30,
        LATE: 20,
    }
    gross = world.rows(
        f"SELECT PARTNER_ID, GROSS_MINOR FROM {{db}}.ANALYTICS.USAGE_BY_PERIOD WHERE PERIOD = '{period}'"
    )
    assert {k: int(v) for k, v in gross} == {"acme-voice": ACME_GROSS, LATE: LATE_GROSS}
    assert expected_gross_minor(ACME_DURATIONS, Decimal("0.015")) == ACME_GROSS
    assert expected_gross_minor(LATE_DURATIONS, Decimal("0.02")) == LATE_GROSS

    # Payouts, as the CronJob runs them (`payouts run --period previous --region eu-central`), from the image.
    # 1. The job's role lacks s3:ListBucket: S3 answers 403 for a statement that does not exist yet. The run stops
    #    before paying anyone and says which permission is missing (exit 1).
    world.s3_proxy.list_bucket = False
    code, _, err = run_payouts(world)
    assert code == 1 and "s3:ListBucket" in err, err
    assert world.stripe.transfers == []
    world.s3_proxy.list_bucket = True

    # 2. Stripe fails acme-voice's transfer past the client's retries (three 500s): a failed month. late-voice has
    #    not finished onboarding: a held month. Neither is paid; the run says so (exit 1).
    world.stripe.inject("transfers", "500", "500", "500")
    code, report, err = run_payouts(world)
    assert code == 1, err
    assert report["period"] == period
    statuses = outcomes(report)
    assert set(statuses) == {("acme-voice", period), (LATE, period)}, statuses
    assert statuses[("acme-voice", period)] == "failed" and statuses[(LATE, period)] in ("carried", "held"), statuses
    assert world.stripe.transfers == []

    # 3. late-voice completes onboarding; the next run pays both months' partners, once, through a dropped answer
    #    (the transfer made, the connection closed before the answer: the client's retry replays it).
    complete_onboarding(late_link)
    world.stripe.inject("transfers", "drop_after_commit")
    code, report, err = run_payouts(world)
    assert code == 0, err
    assert set(outcomes(report).values()) <= {"paid", "repaired"}, report
    paid = {(t["destination"], int(t["amount"]), t["currency"]) for t in world.stripe.transfers}
    assert paid == {(acme_account, ACME_PAYOUT, "eur"), (late_account, LATE_PAYOUT, "eur")}
    assert len(world.stripe.transfers) == 2

    # 4. Run again: nothing is paid twice.
    code, report, err = run_payouts(world)
    assert code == 0, err
    assert set(outcomes(report).values()) == {"already paid"}
    assert len(world.stripe.transfers) == 2

    for partner, gross_minor, payout in (("acme-voice", ACME_GROSS, ACME_PAYOUT), (LATE, LATE_GROSS, LATE_PAYOUT)):
        statement = world.statement(period, partner)
        assert statement["gross_minor"] == gross_minor and statement["payout_minor"] == payout, statement
        assert statement["currency"] == "EUR" and statement["status"] == "paid", statement
        assert statement["transfer"]["amount_minor"] == payout
