"""The store's rules with an explicit clock (5 days of failures, the schedule's end), the sealing of secrets (locally
and with KMS on moto), and the event schemas."""

from __future__ import annotations

import base64
import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import boto3
import pytest
from jsonschema import Draft202012Validator

from services.webhooks.dispatcher import JITTER, SCHEDULE, next_delay, parse_retry_after, sign
from services.webhooks.events import SCHEMA_DIR, InvalidEventError, parse_event, schemas
from services.webhooks.sealing import ENCRYPTION_CONTEXT, SealError, SecretBox, load_box
from services.webhooks.store import DEAD, PENDING, AttemptResult, Store
from tests.services.webhooks_harness import event

DAY = 86400.0


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "webhooks.db")
    store.box = SecretBox(b"s" * 32)
    return store


def _failed(delay: float | None) -> AttemptResult:
    return AttemptResult("failed", 500, "HTTP 500", 3.0, delay)


def _message(store: Store, endpoint_id: str) -> tuple[str, str, int]:
    row = store._read.execute(
        "SELECT id, state, attempts FROM messages WHERE endpoint_id = ? ORDER BY id DESC", (endpoint_id,)
    ).fetchone()
    return row[0], row[1], row[2]


def test_an_endpoint_failing_for_five_days_is_disabled_and_its_owner_told_elsewhere(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        t0 = 1_800_000_000.0
        failing, _ = store.write_sync(store.create_fn("acme-voice", "https://a.example/", [], "", True, t0))
        spare, _ = store.write_sync(store.create_fn("acme-voice", "https://b.example/", ["payout.paid"], "", True, t0))
        other, _ = store.write_sync(store.create_fn("sakura-calls", "https://c.example/", [], "", True, t0))
        store.write_sync(store.ingest_fn(parse_event(event()), t0))
        message_id, _, _ = _message(store, failing.id)
        for now in (t0, t0 + 2 * DAY, t0 + 4.9 * DAY):  # failures within 5 days: still retried
            recorded = store.write_sync(store.record_fn(message_id, failing.id, _failed(60), now))
            assert recorded.state == PENDING and recorded.disabled is None
        # A success on another message would reset the clock; none came: the next failure past 5 days disables.
        recorded = store.write_sync(store.record_fn(message_id, failing.id, _failed(60), t0 + 5 * DAY))
        assert (recorded.state, recorded.disabled) == (DEAD, "failing")
        assert recorded.notified == (spare.id,)  # the owner's other endpoint, even though it did not subscribe
        assert store.endpoint("acme-voice", failing.id).enabled is False  # type: ignore[union-attr]
        _, state, _ = _message(store, spare.id)
        assert state == PENDING
        payload = json.loads(
            store.payload(
                store._read.execute("SELECT event_id FROM messages WHERE endpoint_id = ?", (spare.id,)).fetchone()[0]
            )
        )
        # What the service produces validates against the published schema too.
        parse_event({k: payload[k] for k in ("id", "type", "partner", "data")}, internal=True)
        assert payload["data"] == {"endpoint_id": failing.id, "url": "https://a.example/", "reason": "failing"}
        told_other = store._read.execute("SELECT COUNT(*) FROM messages WHERE endpoint_id = ?", (other.id,))
        assert told_other.fetchone()[0] == 0  # another owner hears nothing of acme's events or endpoints
    finally:
        store.close()


def test_a_success_resets_the_failing_clock(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        t0 = 1_800_000_000.0
        endpoint, _ = store.write_sync(store.create_fn("acme-voice", "https://a.example/", [], "", True, t0))
        store.write_sync(store.ingest_fn(parse_event(event()), t0))
        first, _, _ = _message(store, endpoint.id)
        store.write_sync(store.record_fn(first, endpoint.id, _failed(60), t0))
        delivered = AttemptResult("delivered", 200, None, 1.0, None)
        store.write_sync(store.record_fn(first, endpoint.id, delivered, t0 + 4 * DAY))
        store.write_sync(store.ingest_fn(parse_event(event()), t0 + 4 * DAY))
        second, _, _ = _message(store, endpoint.id)
        recorded = store.write_sync(store.record_fn(second, endpoint.id, _failed(60), t0 + 6 * DAY))
        assert recorded.state == PENDING and recorded.disabled is None
    finally:
        store.close()


def test_the_schedule_and_its_jitter() -> None:
    rng = random.Random(7)
    assert SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    for done in range(1, len(SCHEDULE)):
        delays = [next_delay(done, None, 1.0, rng) for _ in range(200)]
        assert all(SCHEDULE[done] * (1 - JITTER) <= d <= SCHEDULE[done] * (1 + JITTER) for d in delays)  # type: ignore[operator]
        assert len(set(delays)) > 100  # jittered, not in step
    assert next_delay(len(SCHEDULE), None, 1.0, rng) is None  # the eighth failure dead-letters
    assert next_delay(1, None, 0.001, rng) < 0.01  # type: ignore[operator]
    assert next_delay(1, 120.0, 0.001, rng) == 120.0  # Retry-After is the receiver's clock, never scaled
    assert next_delay(1, 10 * DAY, 1.0, rng) == DAY
    assert parse_retry_after("120", 0.0) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert parse_retry_after("soon", 0.0) is None


def test_signatures_are_what_standardwebhooks_computes() -> None:
    from datetime import UTC, datetime

    from standardwebhooks import Webhook

    key = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    body = '{"type":"call.completed","data":{"x":"é"}}'.encode()
    ours = sign([key], "msg_1", 1_700_000_000, body)
    assert ours == Webhook(key).sign("msg_1", datetime.fromtimestamp(1_700_000_000, UTC), body.decode())


def test_secrets_are_never_stored_in_clear_and_a_wrong_key_is_refused(tmp_path: Path) -> None:
    meta: dict[str, bytes] = {}
    env = {"WEBHOOKS_SECRET_KEY": base64.b64encode(b"a" * 32).decode()}
    store = Store(tmp_path / "webhooks.db")
    try:
        store.box = load_box(env, store.meta_get, store.meta_put)
        _, secret = store.write_sync(store.create_fn("acme-voice", "https://a.example/", [], "", True, 0.0))
    finally:
        store.close()
    raw_secret = base64.b64decode(secret.removeprefix("whsec_"))
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert (
            secret.encode() not in data
            and raw_secret not in data
            and secret.removeprefix("whsec_").encode() not in data
        )
    store = Store(tmp_path / "webhooks.db")
    try:
        with pytest.raises(SealError, match="not the one"):
            load_box({"WEBHOOKS_SECRET_KEY": base64.b64encode(b"b" * 32).decode()}, store.meta_get, store.meta_put)
        with pytest.raises(SealError, match="32 bytes"):
            load_box({"WEBHOOKS_SECRET_KEY": base64.b64encode(b"short").decode()}, meta.get, meta.__setitem__)
        with pytest.raises(SealError, match="WEBHOOKS_KMS_KEY_ID"):
            load_box({}, meta.get, meta.__setitem__)
    finally:
        store.close()


def test_the_data_key_comes_from_kms_and_only_its_wrapped_copy_is_kept(aws: str, tmp_path: Path) -> None:
    kms = boto3.client("kms")
    key_id = kms.create_key(Description="region key")["KeyMetadata"]["KeyId"]
    env = {"WEBHOOKS_KMS_KEY_ID": key_id}
    store = Store(tmp_path / "webhooks.db")
    try:
        store.box = load_box(env, store.meta_get, store.meta_put)
        endpoint, secret = store.write_sync(store.create_fn("acme-voice", "https://a.example/", [], "", True, 0.0))
        wrapped = store.meta_get("data_key")
        assert wrapped is not None
    finally:
        store.close()
    # KMS decrypts the stored copy only with the purpose it was made for.
    with pytest.raises(Exception, match="InvalidCiphertext"):
        kms.decrypt(CiphertextBlob=wrapped, KeyId=key_id, EncryptionContext={"purpose": "other"})
    plain = kms.decrypt(CiphertextBlob=wrapped, KeyId=key_id, EncryptionContext=ENCRYPTION_CONTEXT)["Plaintext"]
    assert plain not in (tmp_path / "webhooks.db").read_bytes()
    store = Store(tmp_path / "webhooks.db")  # a restart: the same data key, from KMS
    try:
        store.box = load_box(env, store.meta_get, store.meta_put)
        found = store.delivery(endpoint.id)
        assert found is not None and found[2] == [secret]
    finally:
        store.close()
    other = kms.create_key(Description="another region")["KeyMetadata"]["KeyId"]
    store = Store(tmp_path / "webhooks.db")
    try:
        with pytest.raises(SealError, match="KMS"):
            load_box({"WEBHOOKS_KMS_KEY_ID": other}, store.meta_get, store.meta_put)
    finally:
        store.close()


def test_a_sealed_secret_moved_to_another_endpoint_does_not_open(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        a, _ = store.write_sync(store.create_fn("acme-voice", "https://a.example/", [], "", True, 0.0))
        b, _ = store.write_sync(store.create_fn("sakura-calls", "https://b.example/", [], "", True, 0.0))

        def swap(db: sqlite3.Connection) -> None:
            (sealed,) = db.execute("SELECT secret FROM endpoints WHERE id = ?", (a.id,)).fetchone()
            db.execute("UPDATE endpoints SET secret = ? WHERE id = ?", (sealed, b.id))

        store.write_sync(swap)
        with pytest.raises(SealError):
            store.delivery(b.id)
    finally:
        store.close()


def test_every_schema_is_valid_and_examples_validate() -> None:
    files = sorted(SCHEMA_DIR.glob("*.json"))
    assert {p.name.split(".v")[0] for p in files} == {
        "call.completed", "usage.threshold", "payout.paid", "payout.held", "payout.failed",
        "integration.installed", "integration.removed", "endpoint.disabled",
    }  # fmt: skip
    for path in files:
        doc: dict[str, Any] = json.loads(path.read_text())
        Draft202012Validator.check_schema(doc)
        assert doc["$id"].endswith(path.name)
    assert set(schemas()) == {p.name.split(".v")[0] for p in files}
    examples = [
        event(),
        event("usage.threshold", period="2026-11", threshold_percent=80, used_minutes=800, quota_minutes=1000),
        event("payout.held", period="2026-11", currency="EUR", amount_minor=0, reason="below the minimum"),
        event("payout.failed", period="2026-11", currency="EUR", amount_minor=5, reason="account closed"),
    ]
    for doc in examples:
        parse_event(doc)
    with pytest.raises(InvalidEventError, match="threshold_percent"):
        parse_event(event("usage.threshold", period="2026-11", threshold_percent=90, used_minutes=1, quota_minutes=2))
    with pytest.raises(InvalidEventError, match="completed_at"):
        parse_event(event(completed_at="yesterday"))
