"""Statement stores: S3 through boto3 against moto (versioning required, SSE-KMS on every object), local folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from foundation.errors import InputError, PlatformError
from services.payouts.statements import LocalStatements, S3Statements, open_store

STATEMENT = {"partner": "acme-voice", "period": "2026-10", "payout_minor": 451, "transfer": None}


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
    store.put("2026-10", "acme-voice", {**STATEMENT, "transfer": {"id": "tr_1"}})
    assert store.get("2026-10", "acme-voice") == {**STATEMENT, "transfer": {"id": "tr_1"}}
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
    with pytest.raises(PlatformError, match="not a JSON statement"):
        LocalStatements(tmp_path).get("2026-10", "acme-voice")


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
