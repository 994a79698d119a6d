"""Compliance rules: data residency, customer-managed keys, retention, no public buckets, data kept on delete."""

from __future__ import annotations

from collections.abc import Iterable

from foundation.naming import FINANCIAL_RECORDS, STATEMENT_RETENTION_DAYS, region_database
from policies.model import UNKNOWN, Finding, Level, Resource, StackContext
from policies.resources import of_type, parsed_json, siblings, stack_urn
from regions.catalog import ResidencyVerdict


def check_residency(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Data of a country that requires residency stays in a region that serves it."""
    if context.kind == "global" or context.region is None:
        return
    stack = stack_urn(resources, context)
    catalog = context.catalog
    for cc in context.countries:
        if cc in catalog.countries and catalog.residency_verdict(cc, context.region) is ResidencyVerdict.FORBIDDEN:
            yield stack, f"{cc} requires data residency and cannot be served from {context.region}"
    aws_region = catalog.region(context.region).aws_region
    for provider in of_type(resources, "pulumi:providers:aws"):
        if provider.inputs.get("region") not in (aws_region, UNKNOWN) and context.kind == "partner":
            yield provider.urn, f"AWS provider targets {provider.inputs.get('region')}, the home region is {aws_region}"
    database = region_database(context.region)
    for schema in of_type(resources, "snowflake:index/schema:Schema"):
        if schema.inputs.get("database") not in (database, UNKNOWN):
            yield schema.urn, f"schema lives in {schema.inputs.get('database')}, not the home region's {database}"


def residency_advice(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """A country that prefers residency is served from elsewhere (allowed, with a documented transfer basis)."""
    if context.kind == "global" or context.region is None:
        return
    for cc in context.countries:
        if (
            cc in context.catalog.countries
            and context.catalog.residency_verdict(cc, context.region) is ResidencyVerdict.WARN
        ):
            yield stack_urn(resources, context), f"{cc} prefers data residency but is served from {context.region}"


def check_customer_managed_key(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Every bucket is encrypted with a KMS key the platform manages (SSE-KMS with an explicit key)."""
    for bucket in of_type(resources, "aws:s3/bucket:Bucket"):
        configs = siblings(
            resources, bucket, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
        rules = [rule for c in configs for rule in c.inputs.get("rules", [])]
        defaults = [rule.get("applyServerSideEncryptionByDefault", {}) for rule in rules]
        if not any(d.get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse") and d.get("kmsMasterKeyId") for d in defaults):
            yield bucket.urn, "bucket is not encrypted with a customer-managed KMS key"


def cmk_level(context: StackContext) -> Level:
    profiles = [context.catalog.country(cc).compliance for cc in context.countries if cc in context.catalog.countries]
    return "mandatory" if any(p.customer_managed_key for p in profiles) else "advisory"


def check_retention(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Bucket data expires no later than the strictest retention of the stack's countries."""
    limit = context.strictest_retention
    for bucket in of_type(resources, "aws:s3/bucket:Bucket"):
        tags = bucket.inputs.get("tags") or {}
        if isinstance(tags, dict) and tags.get("platform:data-class") == FINANCIAL_RECORDS:
            yield from _financial_retention(resources, bucket)
            continue
        lifecycles = siblings(resources, bucket, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        days = [
            rule.get("expiration", {}).get("days")
            for lc in lifecycles
            for rule in lc.inputs.get("rules", [])
            if rule.get("status") == "Enabled"
        ]
        days = [d for d in days if isinstance(d, int)]
        if not days:
            yield bucket.urn, f"bucket has no expiry; the strictest retention here is {limit} days"
        elif min(days) > limit:
            yield bucket.urn, f"bucket keeps data {min(days)} days, longer than the strictest retention ({limit} days)"


def _financial_retention(resources: list[Resource], bucket: Resource) -> Iterable[Finding]:
    """Accounting records are kept (versions too) at least STATEMENT_RETENTION_DAYS."""
    for lc in siblings(resources, bucket, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"):
        for rule in lc.inputs.get("rules", []):
            if rule.get("status") != "Enabled":
                continue
            for days in (
                rule.get("expiration", {}).get("days"),
                rule.get("noncurrentVersionExpiration", {}).get("noncurrentDays"),
            ):
                if isinstance(days, int) and days < STATEMENT_RETENTION_DAYS:
                    yield bucket.urn, f"financial records expire after {days} days, before {STATEMENT_RETENTION_DAYS}"


def check_no_public_buckets(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Buckets block all public access and grant nothing to everyone."""
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket in of_type(resources, "aws:s3/bucket:Bucket"):
        if bucket.inputs.get("acl") in ("public-read", "public-read-write", "authenticated-read"):
            yield bucket.urn, f"bucket ACL {bucket.inputs['acl']!r} is public"
        blocks = siblings(resources, bucket, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        if not any(all(b.inputs.get(flag) is True for flag in flags) for b in blocks):
            yield bucket.urn, "bucket has no public access block with all four settings on"
    for policy in of_type(resources, "aws:s3/bucketPolicy:BucketPolicy"):
        document = parsed_json(policy.inputs.get("policy")) or {}
        for statement in document.get("Statement", []):
            principal = statement.get("Principal")
            if statement.get("Effect") == "Allow" and (principal == "*" or principal == {"AWS": "*"}):
                yield policy.urn, "bucket policy allows everyone"


DATA_BEARING = (
    "aws:s3/bucket:Bucket",
    "aws:kms/key:Key",
    "snowflake:index/schema:Schema",
    "snowflake:index/database:Database",
)


def check_data_retained(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Data-bearing resources survive a stack delete unless the partner is purged."""
    if context.purge:
        return
    for resource in resources:
        if resource.type in DATA_BEARING and not resource.retain_on_delete:
            yield resource.urn, "data-bearing resource would be destroyed with the stack (set retain_on_delete)"
