"""The region's data at rest: its customer-managed KMS key and the encrypted buckets (call data, statements)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.regional_deployment.args import RegionalDeploymentArgs
from components.secure_bucket import SecureBucket, SecureBucketArgs
from foundation.naming import CALL_DATA, FINANCIAL_RECORDS, STATEMENT_RETENTION_DAYS

CALL_DATA_PURPOSES = ("recordings", "transcripts")
"""The call-data buckets: they expire with the strictest launched country's retention."""


@dataclass(frozen=True)
class RegionStorage:
    key: aws.kms.Key
    """The region's data key (buckets, EKS secrets, Redis, the payouts job's statements)."""
    key_alias: str
    """Its alias, `alias/<prefix>-<region>-data` (partners find the key by it)."""
    buckets: dict[str, SecureBucket]
    """The region's buckets by purpose: recordings, transcripts, statements."""
    bucket_names: dict[str, str]
    """Their physical names by purpose (fixed at plan time: the payouts role's policy names the statements one)."""


def build_storage(
    parent: pulumi.Resource, name: str, base_name: str, args: RegionalDeploymentArgs, provider: aws.Provider
) -> RegionStorage:
    aws_opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    bucket_names = {purpose: f"{base_name}-{purpose}" for purpose in (*CALL_DATA_PURPOSES, "statements")}
    key = aws.kms.Key(
        f"{name}-data-key",
        description=f"Call data at rest in {args.region.code}",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, retain_on_delete=True),
    )
    key_alias = f"alias/{base_name}-data"
    aws.kms.Alias(f"{name}-data-key-alias", name=key_alias, target_key_id=key.key_id, opts=aws_opts)

    buckets = {
        purpose: SecureBucket(
            f"{name}-{purpose}",
            SecureBucketArgs(
                bucket_name=bucket_names[purpose],
                kms_key_arn=key.arn,
                retention_days=args.retention_days,
                tags={"platform:data": purpose, "platform:data-class": CALL_DATA},
            ),
            opts=aws_opts,
        )
        for purpose in CALL_DATA_PURPOSES
    }
    # Payout statements are accounting records, not call data: no caller's personal data, and a legal duty to
    # keep them (and their history) for years, so they do not expire with the region's call-data retention.
    buckets["statements"] = SecureBucket(
        f"{name}-statements",
        SecureBucketArgs(
            bucket_name=bucket_names["statements"],
            kms_key_arn=key.arn,
            retention_days=STATEMENT_RETENTION_DAYS,
            noncurrent_days=STATEMENT_RETENTION_DAYS,
            tags={"platform:data": "statements", "platform:data-class": FINANCIAL_RECORDS},
        ),
        opts=aws_opts,
    )
    return RegionStorage(key=key, key_alias=key_alias, buckets=buckets, bucket_names=bucket_names)
