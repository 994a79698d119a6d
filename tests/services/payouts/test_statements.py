"""Statement stores: S3 through boto3 against moto (versioning required, SSE-KMS on every object), local folders."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from moto import mock_aws

from foundation.errors import InputError, PlatformError
from services.payouts.statements import LocalStatements, S3Statements, open_store

STATEMENT = {
    "partner": "acme-voice",
    "period": "2026-10",
    "currency": "EUR",
    "gross_minor": 1504,
    "share": "0.3",
    "payout_minor": 451,
    "status": "held",
    "transfer": None,
}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("s3")


def test_an_unversioned_bucket_is_refused(s3: Any) -> None:
    s3.create_bucket(Bucket="plain")
    store = S3Statements("plain", "statements")
    with pytest.raises(PlatformError, match="not versioned"):
        store.put("2026-10", "acme-voice", STATEMENT)
    assert s3.list_objects_v2(Bucket="plain").get("KeyCount") == 0


def test_statements_are_kms_encrypted_and_versions_kept(s3: Any) -> None:
    s3.create_bucket(Bucket="stmts")
    s3.put_bucket_versioning(Bucket="stmts", VersioningConfiguration={"Status": "Enabled"})
    key_id = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
    store = S3Statements("stmts", "statements", kms_key_id=key_id)
    assert store.get("2026-10", "acme-voice") is None
    store.put("2026-10", "acme-voice", STATEMENT)
    paid = {**STATEMENT, "status": "paid", "transfer": {"id": "tr_1", "amount_minor": 451}}
    store.put("2026-10", "acme-voice", paid)
    assert store.get("2026-10", "acme-voice") == paid
    head = s3.head_object(Bucket="stmts", Key="statements/2026-10/acme-voice.json")
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]
    versions = s3.list_object_versions(Bucket="stmts", Prefix="statements/")["Versions"]
    assert len(versions) == 2


def test_a_missing_bucket_is_a_failure_not_a_traceback(s3: Any) -> None:
    with pytest.raises(PlatformError, match="NoSuchBucket"):
        S3Statements("nope", "").put("2026-10", "acme-voice", STATEMENT)


def test_a_corrupt_local_statement_is_refused(tmp_path: Path) -> None:
    (tmp_path / "2026-10").mkdir()
    (tmp_path / "2026-10" / "acme-voice.json").write_text("{not json")
    with pytest.raises(InputError) as caught:
        LocalStatements(tmp_path).get("2026-10", "acme-voice")
    assert "acme-voice.json" in str(caught.value.problems) and "not a JSON statement" in str(caught.value.problems)


@pytest.mark.parametrize(
    "target", ["s3://", "s3://UPPER/x", "s3://b/../etc", "s3://bkt/x?y=1", "gs://bucket/x", "s3://a/b c", "x" * 5000]
)
def test_bad_targets_are_input_errors(tmp_path: Path, target: str) -> None:
    with pytest.raises(InputError):
        open_store(target, tmp_path)


def test_a_file_is_not_a_statements_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError):
        open_store(str(tmp_path / "f"), tmp_path)


class _AwsLikeS3Proxy(ThreadingHTTPServer):
    daemon_threads = True
    upstream: str
    list_bucket: bool


class _ProxyHandler(BaseHTTPRequestHandler):
    """Forwards to moto and answers as S3 does for a caller WITHOUT s3:ListBucket (when `list_bucket` is False):
    a listing is 403 AccessDenied, and a GET/HEAD of a key that does not exist is 403 AccessDenied, not 404:
    "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403 (Access Denied)
    error." (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, read 2026-12-06). moto applies no
    IAM policy by default, which is why the job's tests passed against it while every real run aborted."""

    server: _AwsLikeS3Proxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _denied(self) -> None:
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
            b"<Message>Access Denied</Message></Error>"
        )
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self) -> None:
        path = urlsplit(self.path).path
        is_listing = self.command == "GET" and path.strip("/").count("/") == 0
        if is_listing and not self.server.list_bucket:
            self._denied()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        headers["Host"] = self.server.upstream
        upstream.request(self.command, self.path, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        upstream.close()
        if answer.status == 404 and self.command in ("GET", "HEAD") and not is_listing and not self.server.list_bucket:
            self._denied()
            return
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()


@pytest.fixture
def aws_like_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[_AwsLikeS3Proxy]:
    from moto.server import ThreadedMotoServer

    from tests.services.meter_harness import free_port

    for key in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    proxy = _AwsLikeS3Proxy(("127.0.0.1", 0), _ProxyHandler)
    proxy.upstream = f"127.0.0.1:{port}"
    proxy.list_bucket = True
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        # The server shares moto's in-process backends: start from an empty account.
        reset = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        reset.request("POST", "/moto-api/reset")
        reset.getresponse().read()
        reset.close()
        admin = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
        admin.create_bucket(Bucket="stmts")
        admin.put_bucket_versioning(Bucket="stmts", VersioningConfiguration={"Status": "Enabled"})
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)
        moto.stop()


def _proxied_store(proxy: _AwsLikeS3Proxy) -> S3Statements:
    endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"
    return S3Statements("stmts", "statements", client=boto3.client("s3", endpoint_url=endpoint))


def test_with_list_bucket_a_missing_statement_is_missing(aws_like_s3: _AwsLikeS3Proxy) -> None:
    store = _proxied_store(aws_like_s3)
    assert store.index() == {}
    assert store.get("2026-10", "acme-voice") is None
    store.put("2026-10", "acme-voice", STATEMENT)
    assert store.index() == {"acme-voice": {"2026-10"}}
    assert store.get("2026-10", "acme-voice") == STATEMENT


def test_without_list_bucket_a_403_is_a_refusal_naming_bucket_and_key(aws_like_s3: _AwsLikeS3Proxy) -> None:
    aws_like_s3.list_bucket = False
    store = _proxied_store(aws_like_s3)
    with pytest.raises(PlatformError) as listing:
        store.index()
    assert "s3://stmts/statements/" in str(listing.value) and "s3:ListBucket" in str(listing.value)
    with pytest.raises(PlatformError) as reading:
        store.get("2026-10", "acme-voice")  # does not exist: S3 says 403, and that is not taken for "missing"
    message = str(reading.value)
    assert "s3://stmts/statements/2026-10/acme-voice.json" in message and "403" in message
    assert "s3:ListBucket" in message


def test_the_job_on_s3_stops_at_a_refusal_and_pays_with_list_bucket(
    aws_like_s3: _AwsLikeS3Proxy, tmp_path: Path
) -> None:
    """The deployed job's path (services.payouts.runner) on an S3 that answers like AWS: without s3:ListBucket the
    run stops before paying anyone, naming the bucket and the permission (exit 1); with it, it pays once."""
    import datetime as dt

    from services.payouts import runner
    from tests.services.payouts_harness import ROOT, seed, seed_terms, stripe_env, terms_of, usage_row
    from tests.services.stripe_fake import StripeServer

    seed(tmp_path / "wh", [usage_row("acme-voice", "2026-10", 1003, "0.015", "EUR", "professional")])
    endpoint = f"http://127.0.0.1:{aws_like_s3.server_address[1]}"
    now = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
    with StripeServer() as fake:
        from tests.services.payouts_harness import gateway

        account = gateway(fake).create_account("acme-voice", "US", "USD", "ops@acme.example")["id"]
        fake.complete_onboarding(account)
        seed_terms(tmp_path / "wh", [terms_of(ROOT / "partners/acme-voice.yaml", account)])
        env = {**stripe_env(fake), "AWS_ENDPOINT_URL_S3": endpoint}

        def run() -> Any:
            return runner.run(
                "previous",
                region="eu-central",
                warehouse_url=f"local:{tmp_path / 'wh'}",
                statements="s3://stmts/statements",
                adjustments_file=None,
                dry_run=False,
                live=False,
                env=env,
                now=now,
            )

        aws_like_s3.list_bucket = False
        with pytest.raises(PlatformError) as caught:
            run()
        assert "s3://stmts/statements/" in str(caught.value) and "s3:ListBucket" in str(caught.value)
        assert not isinstance(caught.value, InputError) and not fake.transfers
        aws_like_s3.list_bucket = True
        report = run()
        assert report.period == "2026-11"  # `previous` on 6 December: November has closed
        assert [(o.partner, o.period, o.status) for o in report.outcomes] == [("acme-voice", "2026-10", "paid")]
        assert [t["amount"] for t in fake.transfers] == [451]


@pytest.mark.parametrize("partner", ["../../evil", "acme-voice/../x", "Acme", "a", "acme-voice\n"])
def test_a_warehouse_id_that_is_not_a_partner_id_names_no_file(tmp_path: Path, partner: str) -> None:
    """Partner ids reach the store from the warehouse's rows: one that is not a partner id must not name a file (or
    an S3 key) outside its month; the run fails naming it, and nothing is written."""
    store = LocalStatements(tmp_path / "statements")
    with pytest.raises(PlatformError, match="not a partner id"):
        store.put("2026-10", partner, {})
    with pytest.raises(PlatformError, match="not a partner id"):
        store.get("2026-10", partner)
    assert not any(tmp_path.rglob("*.json"))
