"""End to end on loopback: the real meter takes signed Twilio callbacks for two partners, `billing connect` opens
their Stripe accounts, `payouts run` pays both once into S3 (moto server), a rerun pays nothing, a run into a local
folder finds the transfers instead of paying again; the numbers are the known answers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.services.meter_harness import Meter, callback, free_port, post_callback
from tests.services.stripe_fake import TEST_KEY, FakeStripe, StripeServer

WHEN = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).replace(microsecond=0)
"""Recent enough for the meter to accept (it refuses events older than 35 days); the statements are for its month."""
PERIOD = WHEN.strftime("%Y-%m")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ENDPOINT_URL_KMS": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    try:
        yield boto3.client("s3", endpoint_url=endpoint)
    finally:
        server.stop()


@pytest.fixture
def stripe_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    with StripeServer() as fake:
        monkeypatch.setenv("STRIPE_API_KEY", TEST_KEY)
        monkeypatch.setenv("STRIPE_API_BASE", fake.base)
        yield fake


def test_meter_to_statements_and_transfers(
    tmp_path: Path,
    repo_copy: Path,
    cli: Callable[..., Any],
    s3: Any,
    stripe_fake: FakeStripe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kms_key = boto3.client("kms").create_key(Description="statements")["KeyMetadata"]["Arn"]
    s3.create_bucket(
        Bucket="voiceplat-eu-central-statements", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    s3.put_bucket_versioning(Bucket="voiceplat-eu-central-statements", VersioningConfiguration={"Status": "Enabled"})
    monkeypatch.setenv("PAYOUTS_KMS_KEY_ID", kms_key)

    meter = Meter(tmp_path).start()
    try:
        with httpx.Client(timeout=10) as client:
            # acme-voice (EUR, 0.015/min): 1000 + 3 x 1 minutes = 1003 min = 15.045 EUR -> 1504 cents; x0.30 -> 451
            for seconds in (60_000, 1, 30, 59):
                assert (
                    post_callback(client, meter, "acme-voice", callback(duration=seconds, when=WHEN)).status_code == 200
                )
            # sakura-calls (JPY, 1.5/min): 300 + 35 minutes = 502.5 yen -> 502; x0.40 -> 200
            for seconds in (18_000, 2_041):
                form = callback(duration=seconds, when=WHEN, To="+81312345678")
                assert post_callback(client, meter, "sakura-calls", form).status_code == 200
        meter.wait_flushed()
    finally:
        meter.stop()
    warehouse = f"local:{tmp_path / 'warehouse'}"

    for partner in ("acme-voice", "sakura-calls"):
        cli("billing", "connect", partner, "--yes", root=repo_copy)
        assert "platform:stripeAccount: acct_" in (repo_copy / f"stacks/Pulumi.partner-{partner}.yaml").read_text()
    assert len(stripe_fake.accounts) == 2
    cli("billing", "connect", "acme-voice", root=repo_copy)  # finds it, asks nothing
    assert len(stripe_fake.accounts) == 2

    target = "s3://voiceplat-eu-central-statements/statements"
    first = cli(
        "payouts", "run", "--period", PERIOD, "--warehouse", warehouse, "--statements", target, "--json", root=repo_copy
    )
    outcomes = {p["partner"]: p for p in json.loads(first.out)["partners"]}
    assert {p: o["status"] for p, o in outcomes.items()} == {"acme-voice": "paid", "sakura-calls": "paid"}
    assert sorted((t["metadata"]["partner"], t["amount"], t["currency"]) for t in stripe_fake.transfers) == [
        ("acme-voice", 451, "eur"),
        ("sakura-calls", 200, "jpy"),
    ]

    second = cli("payouts", "run", "--period", PERIOD, "--warehouse", warehouse, "--statements", target, root=repo_copy)
    assert second.out.count("already paid") >= 2
    assert len(stripe_fake.transfers) == 2

    for partner, (minutes, gross, payout) in {"acme-voice": (1003, 1504, 451), "sakura-calls": (335, 502, 200)}.items():
        key = f"statements/{PERIOD}/{partner}.json"
        head = s3.head_object(Bucket="voiceplat-eu-central-statements", Key=key)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == kms_key
        body = json.loads(s3.get_object(Bucket="voiceplat-eu-central-statements", Key=key)["Body"].read())
        assert (body["minutes"], body["gross_minor"], body["payout_minor"]) == (minutes, gross, payout)
        assert body["transfer"]["amount_minor"] == payout

    local = tmp_path / "statements"
    third = cli(
        "payouts",
        "run",
        "--period",
        PERIOD,
        "--warehouse",
        warehouse,
        "--statements",
        str(local),
        "--json",
        root=repo_copy,
    )
    assert {p["status"] for p in json.loads(third.out)["partners"]} == {"repaired"}
    assert len(stripe_fake.transfers) == 2
    for partner, payout in {"acme-voice": 451, "sakura-calls": 200}.items():
        statement = json.loads((local / PERIOD / f"{partner}.json").read_text())
        assert statement["payout_minor"] == payout and statement["transfer"]["amount_minor"] == payout
