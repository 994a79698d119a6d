"""SecureBucket: an S3 bucket that holds call data - private, versioned, SSE-KMS, TLS-only, expiring."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class SecureBucketArgs:
    bucket_name: str
    """Globally unique physical name (known at plan time so policies can name it)."""
    kms_key_arn: pulumi.Input[str]
    """Customer-managed KMS key that encrypts every object."""
    retention_days: int
    """Objects (and their old versions) expire after this many days: the strictest retention that applies."""
    retain_on_delete: bool = True
    """Keep the bucket when the stack deletes it (call data outlives a teardown unless purged)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Extra tags (the provider adds the platform's default tags)."""
    noncurrent_days: int = 1
    """Days an overwritten or deleted object's old version is kept (records whose history matters keep it longer)."""


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:secure_bucket:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_on_delete)

        self.bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket=args.bucket_name, force_destroy=False, tags=args.tags, opts=data
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-retention",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="compliance-retention",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.retention_days),
                    # A deleted or overwritten object must not outlive the retention either.
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=args.noncurrent_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                )
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=tls_only_policy(args.bucket_name),
            # S3 rejects a bucket policy while the public access block is being changed.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access, ownership]),
        )
        self.arn = self.bucket.arn
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})


def tls_only_policy(bucket_name: str) -> str:
    """Deny any request not made over TLS 1.2+, and any upload that asks for an encryption other than KMS.

    An upload without the encryption header is allowed: the bucket's default encryption (SSE-KMS with the region's
    key) encrypts it, and multipart parts (UploadPart, also authorized as s3:PutObject) never carry the header.
    Hence `Null: false` (the header is present) AND `StringNotEquals` (it names something else); the former
    `StringNotEqualsIfExists` is true when the header is absent and so refused both. Source: AWS IAM user guide,
    "IAM JSON policy elements: Condition operators" (...IfExists, Null), and S3 user guide, "Requiring server-side
    encryption" / "UploadPart" (read 2026-11-29)."""
    bucket_arn = f"arn:aws:s3:::{bucket_name}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "DenyOutdatedTls",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
                },
                {
                    "Sid": "DenyNonKmsEncryptionHeader",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/*",
                    "Condition": {
                        "Null": {"s3:x-amz-server-side-encryption": "false"},
                        "StringNotEquals": {"s3:x-amz-server-side-encryption": ["aws:kms", "aws:kms:dsse"]},
                    },
                },
            ],
        },
        sort_keys=True,
    )
