"""Where statements live: a local folder or an S3 prefix (SSE-KMS, versioned bucket), one JSON per partner-period.

Layout: `<root>/<period>/<partner>.json`. A statement is rewritten while its month is not settled (pending, held,
failed) and when a later statement takes over an amount it still owes (`followups`); the bucket's versioning keeps
every earlier version.

S3 permissions: the payouts role needs s3:GetObject and s3:PutObject on `<prefix>/*` and s3:ListBucket on the
bucket limited to `<prefix>/`. Without ListBucket, S3 answers a GET of a key that does not exist with 403
AccessDenied, not 404 ("If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403
(Access Denied) error", https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, read 2026-12-06), so a
missing statement could not be told from a refused one. The store lists the prefix once per run (`index`) and reads
only statements that exist; a 403 on either is a refusal, named with bucket and key, never taken for "missing".
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from foundation.errors import InputError, PlatformError
from foundation.naming import PARTNER_ID_PATTERN, is_partner_id
from foundation.yamlio import validation_problems, write_atomic

KMS_KEY_ENV = "PAYOUTS_KMS_KEY_ID"
"""KMS key (id, ARN or alias) statements are encrypted with; unset: the bucket's default aws:kms key."""
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
MAX_STATEMENT_BYTES = 1 << 20


_STATEMENT_PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
_STATEMENT_PARTNER = re.compile(PARTNER_ID_PATTERN)


class StatementStore(Protocol):
    where: str

    def index(self) -> dict[str, set[str]]:
        """Every stored statement: partner -> its periods."""
        ...

    def get(self, period: str, partner: str) -> dict[str, Any] | None: ...

    def put(self, period: str, partner: str, statement: dict[str, Any]) -> str: ...


class _Open(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Line(_Open):
    kind: str
    amount_minor: int
    reason: str


class _Followup(_Open):
    into: Annotated[str, Field(pattern=_STATEMENT_PERIOD.pattern)] | None
    """The statement the amount went onto; null: recorded, not on any statement yet (an operator line given for a
    month whose transfer was already requested)."""
    amount_minor: int
    kind: str
    reason: str = ""
    """An operator line's reason (kind credit or correction), kept for the statement it lands on."""


class _Statement(_Open):
    """The shape a stored statement must have before the job trusts any of it (fields the job reads)."""

    partner: str
    period: str
    currency: str | None
    minutes: int = 0
    rate: str | list[str] = "0"
    gross_minor: int
    share: Annotated[str, Field(pattern=r"^(0(\.[0-9]{1,12})?|1(\.0{1,12})?)$")]
    payout_minor: int
    adjustments: list[_Line] = []
    due_minor: int | None = None
    status: Literal["pending", "paid", "external", "carried", "held", "failed"] | None = None
    reason: str = ""
    transfer: dict[str, Any] | None = None
    requested: dict[str, Any] | None = None
    stripe_answer: dict[str, Any] | None = None
    followups: list[_Followup] = []
    region: str | None = None
    updated_at: str | None = None


class _DeveloperLine(_Open):
    install: str
    partner: str
    integration: str
    price_minor: int  # the listed monthly price in the developer's currency at install (RAW.INSTALLS)
    share: Annotated[str, Field(pattern=r"^0(\.[0-9]{1,12})?$")]


class _DeveloperStatement(_Open):
    """A marketplace developer's statement (services.payouts.developers), stored under `developers/`."""

    developer: str
    period: str
    currency: str
    lines: list[_DeveloperLine]
    carried_in: list[dict[str, Any]] = []
    payout_minor: int
    due_minor: int
    status: Literal["pending", "paid", "carried", "held", "failed"]
    reason: str = ""
    transfer: dict[str, Any] | None = None
    requested: dict[str, Any] | None = None
    stripe_answer: dict[str, Any] | None = None
    carried_into: Annotated[str, Field(pattern=_STATEMENT_PERIOD.pattern)] | None = None
    region: str | None = None
    updated_at: str | None = None


def statement_name(period: str, partner: str) -> str:
    """`<period>/<partner>.json`, for a partner id and a period only: ids come from the warehouse's rows, and one
    that is not a partner id (`../x`) must not name a file or key outside its month."""
    if not is_partner_id(partner) or not _STATEMENT_PERIOD.fullmatch(period):
        raise PlatformError(
            f"refusing to name a statement for partner {partner[:80]!r}, period {period[:20]!r}: not a partner id "
            "and a YYYY-MM period (a PARTNERS or usage row of the warehouse holds it; fix the row)"
        )
    return f"{period}/{partner}.json"


def check_statement(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """`doc` if it is a statement; bad input naming the file and the field (exit 2) otherwise."""
    try:
        if "developer" in doc:
            _DeveloperStatement.model_validate(doc)
            return doc
        parsed = _Statement.model_validate(doc)
    except ValidationError as exc:
        raise InputError(validation_problems(where, exc)) from None
    transfer = parsed.transfer
    if transfer is not None and (
        isinstance(transfer.get("amount_minor"), bool) or not isinstance(transfer.get("amount_minor"), int)
    ):
        raise InputError.single(where, "transfer.amount_minor", "must be an integer")
    return doc


def _encode(statement: dict[str, Any]) -> str:
    return json.dumps(statement, indent=2, sort_keys=False) + "\n"


def _decode(text: bytes, where: str) -> dict[str, Any]:
    if len(text) > MAX_STATEMENT_BYTES:
        raise PlatformError(f"{where}: larger than any statement; refusing to read it")
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise InputError.single(where, "", "not a JSON statement; fix or remove it before paying this period") from None
    if not isinstance(doc, dict):
        raise InputError.single(where, "", "not a JSON statement object")
    return check_statement(doc, where)


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
        return self.directory / statement_name(period, partner)

    def index(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        if not self.directory.is_dir():
            return found
        try:
            for month in self.directory.iterdir():
                if not _STATEMENT_PERIOD.fullmatch(month.name) or not month.is_dir():
                    continue
                for path in month.glob("*.json"):
                    if _STATEMENT_PARTNER.fullmatch(path.stem):
                        found.setdefault(path.stem, set()).add(month.name)
        except OSError as exc:
            raise PlatformError(f"{self.directory}: cannot list ({exc.strerror})") from None
        return found

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
        name = statement_name(period, partner)
        return f"{self.prefix}/{name}" if self.prefix else name

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

    def index(self) -> dict[str, set[str]]:
        """One listing of the prefix (s3:ListBucket, limited to the prefix, is what makes a missing key a 404)."""
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = f"{self.prefix}/" if self.prefix else ""
        found: dict[str, set[str]] = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents") or []:
                    parts = item["Key"][len(prefix) :].split("/")
                    if len(parts) == 2 and _STATEMENT_PERIOD.fullmatch(parts[0]) and parts[1].endswith(".json"):
                        partner = parts[1].removesuffix(".json")
                        if _STATEMENT_PARTNER.fullmatch(partner):
                            found.setdefault(partner, set()).add(parts[0])
        except ClientError as exc:
            raise PlatformError(_refused(exc, f"s3://{self.bucket}/{prefix}", "list", "s3:ListBucket")) from None
        except BotoCoreError as exc:
            raise PlatformError(f"{self.where}: cannot reach S3 ({type(exc).__name__})") from None
        return found

    def get(self, period: str, partner: str) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(period, partner)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read(MAX_STATEMENT_BYTES + 1)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if code in ("NoSuchKey", "404"):
                return None
            raise PlatformError(_refused(exc, f"s3://{self.bucket}/{key}", "read", "s3:GetObject")) from None
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
            raise PlatformError(_refused(exc, f"s3://{self.bucket}/{key}", "write", "s3:PutObject")) from None
        except BotoCoreError as exc:
            raise PlatformError(f"{self.where}: cannot reach S3 ({type(exc).__name__})") from None
        return f"s3://{self.bucket}/{key}"


def _refused(exc: Any, where: str, verb: str, permission: str) -> str:
    """The message of an S3 error answer: a 403 names the permission (and, for a read, why a missing key is 403)."""
    code = exc.response.get("Error", {}).get("Code", "error")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("AccessDenied", "403") or status == 403:
        hint = f"the payouts role needs {permission}"
        if verb == "read":
            hint += (
                " (and s3:ListBucket on the bucket for its prefix: without it S3 answers 403, not 404, for a "
                "statement that does not exist)"
            )
        return f"{where}: cannot {verb}: S3 refused (403 {code}); {hint}"
    return f"{where}: cannot {verb} ({code})"


def open_store(target: str, default_dir: Path | None = None, env: Mapping[str, str] | None = None) -> StatementStore:
    """`--statements`: a directory, or s3://BUCKET[/PREFIX] (KMS key from PAYOUTS_KMS_KEY_ID in `env`)."""
    env = os.environ if env is None else env
    if not target:
        if default_dir is None:
            raise InputError.single("--statements", "", "required: a directory or s3://BUCKET/PREFIX")
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
        import boto3

        # The caller's environment decides the endpoint (AWS_ENDPOINT_URL_S3: moto or a proxy in tests); credentials
        # and region come from boto3's usual chain (the pod's IRSA role).
        client = boto3.client("s3", endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or None)
        return S3Statements(parts.netloc, "/".join(pieces), env.get(KMS_KEY_ENV) or None, client=client)
    if "://" in target:
        raise InputError.single("--statements", "", "must be a directory or s3://BUCKET/PREFIX")
    return LocalStatements(Path(target))
