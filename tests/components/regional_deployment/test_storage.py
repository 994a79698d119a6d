"""The region's data at rest (components/regional_deployment/storage.py): KMS key, buckets, retention."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Plan

BUCKET_PARTS = "aws:s3/"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


@pytest.mark.parametrize(
    ("region", "days"),
    [
        ("eu-central", 90),  # DE (90) and AT (180): the strictest wins
        ("sa-east", 120),  # BR
        ("ca-central", 365),  # CA
        ("ap-tokyo", 180),  # JP
        ("us-east", 180),  # US: default profile
        ("eu-milan", 180),  # nothing launched: default profile
    ],
)
def test_bucket_expiry_is_the_strictest_launched_retention(fleet: Plan, region: str, days: int) -> None:
    stack = f"region-{region}"
    lifecycles = fleet.resources(stack, LIFECYCLE)
    assert len(lifecycles) == 3  # recordings, transcripts, statements
    call_data = [lc for lc in lifecycles if "statements" not in lc.name]  # statements are accounting records
    assert len(call_data) == 2
    for lifecycle in call_data:
        rule = lifecycle.inputs["rules"][0]
        assert rule["status"] == "Enabled"
        assert rule["expiration"]["days"] == days
        assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 1
    assert fleet.outputs(stack)["retention_days"] == days


def test_buckets_are_kms_encrypted_versioned_private_and_tls_only(fleet: Plan) -> None:
    stack = "region-eu-central"
    key = fleet.one(stack, "aws:kms/key:Key", "region-data-key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.retain_on_delete
    for purpose in ("recordings", "transcripts", "statements"):
        bucket = fleet.one(stack, "aws:s3/bucket:Bucket", f"region-{purpose}-bucket")
        assert bucket.inputs["bucket"] == f"voiceplat-eu-central-{purpose}"
        assert bucket.retain_on_delete
        sse = fleet.one(stack, SSE, f"region-{purpose}-encryption")
        assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        assert sse.property_dependencies["rules"] == [key.urn]
        versioning = fleet.one(stack, "aws:s3/bucketVersioning:BucketVersioning", f"region-{purpose}-versioning")
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
        block = fleet.one(
            stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"region-{purpose}-public-access"
        )
        assert all(
            block.inputs[flag] is True
            for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
        policy = json.loads(
            fleet.one(stack, "aws:s3/bucketPolicy:BucketPolicy", f"region-{purpose}-policy").inputs["policy"]
        )
        deny_plain = next(s for s in policy["Statement"] if s["Sid"] == "DenyInsecureTransport")
        assert deny_plain["Effect"] == "Deny"
        assert deny_plain["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert f"arn:aws:s3:::voiceplat-eu-central-{purpose}/*" in deny_plain["Resource"]
