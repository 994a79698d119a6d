"""End to end on loopback: the real meter takes signed Twilio callbacks for two partners, their stacks' terms are in
PARTNERS, `billing connect` opens acme-voice's Stripe account (sakura-calls, in Japan, cannot be paid through Stripe
Connect from a US platform and is paid by bank transfer), the partner onboards through its Account Link, `payouts
run --period previous` pays once into S3 (moto server), a rerun pays nothing, a run into a local folder finds the
transfer instead of paying again; the numbers are the known answers."""

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

from services.payouts.money import latest_payable, period_end
from tests.services.meter_harness import Meter, callback, free_port, post_callback
from tests.services.payouts_harness import ROOT, seed_terms, stripe_for_commands, terms_of
from tests.services.stripe_fake import FakeStripe

PERIOD = latest_payable(dt.datetime.now(dt.UTC))
"""What `--period previous` pays today: the latest month whose close window has passed."""
WHEN = period_end(PERIOD) - dt.timedelta(hours=12)
"""The last day of that month: at most ~32.5 days ago, recent enough for the meter (it takes events up to 35 days)."""


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
    with stripe_for_commands(monkeypatch) as fake:
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
    # What each partner stack's `up` upserts; sakura-calls is paid by bank transfer (see the module docstring).
    seed_terms(
        tmp_path / "warehouse",
        [
            terms_of(ROOT / "partners/acme-voice.yaml"),
            terms_of(ROOT / "partners/sakura-calls.yaml", PAYOUT_METHOD="bank_transfer"),
        ],
    )

    connected = cli("billing", "connect", "acme-voice", "--yes", root=repo_copy)
    assert "platform:stripeAccount: acct_" in (repo_copy / "stacks/Pulumi.partner-acme-voice.yaml").read_text()
    assert "cross-border" in cli("billing", "connect", "sakura-calls", "--yes", code=2, root=repo_copy).err
    (link,) = [word for word in connected.out.split() if word.startswith(stripe_fake.base)]
    assert httpx.get(link).status_code == 302  # the partner completes Stripe's onboarding
    assert len(stripe_fake.accounts) == 1
    cli("billing", "connect", "acme-voice", root=repo_copy)  # finds it, asks nothing
    assert len(stripe_fake.accounts) == 1

    target = "s3://voiceplat-eu-central-statements/statements"
    args = ["--warehouse", warehouse, "--statements", target, "--region", "eu-central"]
    first = cli("payouts", "run", "--period", "previous", *args, "--json", root=repo_copy)
    report = json.loads(first.out)
    assert report["period"] == PERIOD
    outcomes = {p["partner"]: p for p in report["partners"]}
    assert {p: o["status"] for p, o in outcomes.items()} == {"acme-voice": "paid", "sakura-calls": "external"}
    assert [(t["metadata"]["partner"], t["amount"], t["currency"]) for t in stripe_fake.transfers] == [
        ("acme-voice", 451, "eur")
    ]

    second = cli("payouts", "run", "--period", "previous", *args, root=repo_copy)
    assert second.out.count("already paid") >= 2
    assert len(stripe_fake.transfers) == 1

    for partner, (minutes, gross, payout) in {"acme-voice": (1003, 1504, 451), "sakura-calls": (335, 502, 200)}.items():
        key = f"statements/{PERIOD}/{partner}.json"
        head = s3.head_object(Bucket="voiceplat-eu-central-statements", Key=key)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == kms_key
        body = json.loads(s3.get_object(Bucket="voiceplat-eu-central-statements", Key=key)["Body"].read())
        assert (body["minutes"], body["gross_minor"], body["payout_minor"]) == (minutes, gross, payout)
        assert body["transfer"]["amount_minor"] == payout and body["region"] == "eu-central"

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
    assert {(p["partner"], p["status"]) for p in json.loads(third.out)["partners"]} == {
        ("acme-voice", "repaired"),
        ("sakura-calls", "external"),
    }
    assert len(stripe_fake.transfers) == 1
    statement = json.loads((local / PERIOD / "acme-voice.json").read_text())
    assert statement["payout_minor"] == 451 and statement["transfer"]["amount_minor"] == 451
