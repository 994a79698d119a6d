"""Where statements live: a local folder or an S3 prefix (SSE-KMS, versioned bucket), one JSON per partner-period.

Layout: `<root>/<period>/<partner>.json`. Overwrites happen only when a carried (unpaid) statement is paid on a
rerun; the bucket's versioning keeps every earlier version.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from foundation.errors import InputError, PlatformError
from foundation.yamlio import write_atomic

KMS_KEY_ENV = "PAYOUTS_KMS_KEY_ID"
"""KMS key (id, ARN or alias) statements are encrypted with; unset: the bucket's default aws:kms key."""
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
MAX_STATEMENT_BYTES = 1 << 20


class StatementStore(Protocol):
    where: str

    def get(self, period: str, partner: str) -> dict[str, Any] | None: ...

    def put(self, period: str, partner: str, statement: dict[str, Any]) -> str: ...


def _encode(statement: dict[str, Any]) -> str:
    return json.dumps(statement, indent=2, sort_keys=False) + "\n"


def _decode(text: bytes, where: str) -> dict[str, Any]:
    if len(text) > MAX_STATEMENT_BYTES:
        raise PlatformError(f"{where}: larger than any statement; refusing to read it")
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise PlatformError(f"{where}: not a JSON statement; fix or remove it before paying this period") from None
    if not isinstance(doc, dict):
        raise PlatformError(f"{where}: not a JSON statement object")
    return doc


class LocalStatements:
    def __init__(self, directory: Path) -> None:
        if "\x00" in str(directory):
            raise InputError.single("--statements", "", "not a usable directory name")
        try:
            exists, is_dir = directory.exists(), directory.is_dir()
        except OSError as exc:  # a name too long for the filesystem, a component that is a file
            raise InputError.single("--statements", "", f"not a usable directory ({exc.strerror})") from None
        if exists and not is_dir:
            raise InputError.single("--statements", "", f"{directory} exists and is not a directory")
        self.directory = directory
        self.where = str(directory)

    def _path(self, period: str, partner: str) -> Path:
        return self.directory / period / f"{partner}.json"

    def get(self, period: str, partner: str) -> dict[str, Any] | None:
        path = self._path(period, partner)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PlatformError(f"{path}: cannot read ({exc.strerror})") from None
        return _decode(data, str(path))

    def put(self, period: str, partner: str, statement: dict[str, Any]) -> str:
        path = self._path(period, partner)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, _encode(statement))
        except OSError as exc:
            raise PlatformError(f"{path}: cannot write ({exc.strerror})") from None
        return str(path)


class S3Statements:
    """boto3 against the region's statements bucket; AWS_ENDPOINT_URL_S3 redirects it (moto in tests)."""

    def __init__(self, bucket: str, prefix: str, kms_key_id: str | None = None, client: Any = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix
        self.kms_key_id = kms_key_id
        self.client = client or boto3.client("s3")
        self.where = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._checked = False

    def _key(self, period: str, partner: str) -> str:
        return f"{self.prefix}/{period}/{partner}.json" if self.prefix else f"{period}/{partner}.json"

    def _check_bucket(self) -> None:
        """A statement is a financial record: refuse a bucket that would lose its history."""
        if self._checked:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise PlatformError(f"{self.where}: cannot read the bucket's versioning ({code})") from None
        except BotoCoreError as exc:
            raise PlatformError(f"{self.where}: cannot reach S3 ({type(exc).__name__})") from None
        if status != "Enabled":
            raise PlatformError(f"{self.where}: the bucket is not versioned; statements go only to a versioned bucket")
        self._checked = True

    def get(self, period: str, partner: str) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(period, partner)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read(MAX_STATEMENT_BYTES + 1)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if code in ("NoSuchKey", "404"):
                return None
            raise PlatformError(f"s3://{self.bucket}/{key}: cannot read ({code})") from None
        except BotoCoreError as exc:
            raise PlatformError(f"{self.where}: cannot reach S3 ({type(exc).__name__})") from None
        return _decode(body, f"s3://{self.bucket}/{key}")

    def put(self, period: str, partner: str, statement: dict[str, Any]) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        self._check_bucket()
        key = self._key(period, partner)
        extra: dict[str, Any] = {"ServerSideEncryption": "aws:kms"}
        if self.kms_key_id:
            extra["SSEKMSKeyId"] = self.kms_key_id
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=_encode(statement).encode(),
                ContentType="application/json",
                **extra,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise PlatformError(f"s3://{self.bucket}/{key}: cannot write ({code})") from None
        except BotoCoreError as exc:
            raise PlatformError(f"{self.where}: cannot reach S3 ({type(exc).__name__})") from None
        return f"s3://{self.bucket}/{key}"


def open_store(target: str, default_dir: Path) -> StatementStore:
    """`--statements`: a directory, or s3://BUCKET[/PREFIX]."""
    if not target:
        return LocalStatements(default_dir)
    if target.startswith("s3://"):
        parts = urlsplit(target)
        if not _BUCKET.fullmatch(parts.netloc or "") or ".." in parts.netloc:
            raise InputError.single("--statements", "", "s3://BUCKET/PREFIX needs a valid bucket name")
        if parts.query or parts.fragment:
            raise InputError.single("--statements", "", "s3://BUCKET/PREFIX takes no query or fragment")
        pieces = [p for p in parts.path.split("/") if p]
        if any(not _PREFIX_PART.fullmatch(p) or p in (".", "..") for p in pieces):
            raise InputError.single("--statements", "", "the S3 prefix may hold only A-Z a-z 0-9 . _ - between slashes")
        return S3Statements(parts.netloc, "/".join(pieces), os.environ.get(KMS_KEY_ENV) or None)
    if "://" in target:
        raise InputError.single("--statements", "", "must be a directory or s3://BUCKET/PREFIX")
    return LocalStatements(Path(target))
