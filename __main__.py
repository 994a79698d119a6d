"""The platform's Pulumi program: the stack name picks what is built.

global            Kong control plane entities, DNS zone, Snowflake accounts
region-<code>     one RegionalDeployment with its launched countries
partner-<id>      one PartnerTenant, from partners/<id>.yaml
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from platformctl.errors import PlatformError
from platformctl.stacks import StackKind, parse_stack_name

ROOT = Path(__file__).absolute().parent  # not resolve(): a dry-run overlay links this file


def main() -> None:
    try:
        stack = parse_stack_name(pulumi.get_stack())
        builders = {StackKind.GLOBAL: build_global, StackKind.REGION: build_region, StackKind.PARTNER: build_partner}
        builders[stack.kind](stack.key)
    except PlatformError as exc:
        # RunError reports the message without a Python traceback.
        raise pulumi.RunError(str(exc)) from None


def stack_reference(stack: str) -> pulumi.StackReference:
    org = pulumi.Config("platform").require("stackOrg")
    return pulumi.StackReference(f"{org}/{pulumi.get_project()}/{stack}")


def build_global(_: str) -> None:
    import pulumi_aws as aws
    import pulumi_kong as kong
    import pulumi_snowflake as snowflake

    from components.kong_gateway import KongGateway, KongGatewayArgs
    from components.snowflake_organization import SnowflakeOrganization, SnowflakeOrganizationArgs
    from gateway.model import load_api_catalog
    from partners.tiers import load_tiers
    from regions.catalog import load_catalog

    config = pulumi.Config("platform")
    catalog = load_catalog(ROOT / "regions")
    kong_provider = kong.Provider(
        "kong", kong_admin_uri=config.require("kongAdminUrl"), kong_admin_token=config.get_secret("kongAdminToken")
    )
    gateway = KongGateway(
        "gateway",
        KongGatewayArgs(
            apis=load_api_catalog(ROOT / "gateway" / "apis.yaml"),
            tiers=load_tiers(ROOT / "partners" / "tiers.yaml"),
            meter_hosts=tuple(f"meter.{code}.{config.require('dnsZone')}" for code in catalog.regions),
        ),
        opts=pulumi.ResourceOptions(providers=[kong_provider]),
    )
    # Route 53 is a global service; its API lives in us-east-1.
    dns_provider = aws.Provider("dns-aws", region="us-east-1")
    zone = aws.route53.Zone(
        "dns-zone",
        name=config.require("dnsZone"),
        comment="Platform public zone",
        opts=pulumi.ResourceOptions(provider=dns_provider, protect=True),
    )
    org_provider = snowflake.Provider("snowflake-org", role="ORGADMIN")
    org = SnowflakeOrganization(
        "snowflake-org",
        SnowflakeOrganizationArgs(
            regions=tuple(catalog.regions.values()), admin_email=config.require("snowflakeAdminEmail")
        ),
        opts=pulumi.ResourceOptions(providers=[org_provider]),
    )
    pulumi.export("kong_service_ids", gateway.service_ids)
    pulumi.export("kong_rate_limit_plans", gateway.rate_limit_plans)
    pulumi.export("kong_cluster_endpoint", config.require("kongClusterEndpoint"))
    pulumi.export("kong_telemetry_endpoint", config.require("kongTelemetryEndpoint"))
    pulumi.export("kong_cluster_cert", gateway.cluster_cert)
    pulumi.export("kong_cluster_key", gateway.cluster_key)
    pulumi.export("dns_zone_id", zone.zone_id)
    pulumi.export("dns_zone_name", zone.name)
    pulumi.export("snowflake_accounts", org.accounts)
    pulumi.export("snowflake_admin_keys", org.admin_keys)
    pulumi.export("meter_kong_token", gateway.meter_token)


def build_region(code: str) -> None:
    from components.regional_deployment import RegionalDeployment, RegionalDeploymentArgs
    from regions.catalog import ResidencyVerdict, load_catalog

    config = pulumi.Config("platform")
    catalog = load_catalog(ROOT / "regions")
    if code not in catalog.regions:
        raise pulumi.RunError(f"stack region-{code}: {code!r} is not a region of regions/regions.yaml")
    launched = config.get_object("launchedCountries") or []
    for cc in launched:
        if cc not in catalog.countries:
            raise pulumi.RunError(f"stack region-{code}: platform:launchedCountries: unknown country {cc!r}")
        if catalog.residency_verdict(cc, code) is ResidencyVerdict.FORBIDDEN:
            raise pulumi.RunError(f"stack region-{code}: platform:launchedCountries: {cc} requires residency elsewhere")
    global_ref = stack_reference("global")
    meter_public_url = pulumi.Output.concat("https://meter.", code, ".", global_ref.get_output("dns_zone_name"))
    deployment = RegionalDeployment(
        "region",
        RegionalDeploymentArgs(
            region=catalog.region(code),
            launched=tuple(catalog.country(cc) for cc in launched),
            retention_days=catalog.strictest_retention_days(launched),
            name_prefix=config.require("namePrefix"),
            kubernetes_version=config.require("kubernetesVersion"),
            kong_cluster_endpoint=global_ref.get_output("kong_cluster_endpoint"),
            kong_telemetry_endpoint=global_ref.get_output("kong_telemetry_endpoint"),
            kong_cluster_cert=global_ref.get_output("kong_cluster_cert"),
            kong_cluster_key=global_ref.get_output("kong_cluster_key"),
            snowflake_organization=config.require("snowflakeOrganization"),
            snowflake_account=global_ref.get_output("snowflake_accounts")[code],
            snowflake_private_key=global_ref.get_output("snowflake_admin_keys")[code],
            meter_image=config.require("servicesImage"),
            meter_public_url=meter_public_url,
            meter_kong_token=global_ref.get_output("meter_kong_token"),
            twilio_auth_token=config.get_secret("twilioAuthToken") or "",
            stripe_api_key=config.get_secret("stripeApiKey") or "",
        ),
    )
    for key, value in deployment.outputs.items():
        pulumi.export(key, value)


def build_partner(partner_id: str) -> None:
    import pulumi_aws as aws
    import pulumi_kong as kong
    import pulumi_kubernetes as k8s
    import pulumi_snowflake as snowflake

    from components.partner_tenant import PartnerTenant, PartnerTenantArgs
    from partners.spec import check_against_catalog, load_spec
    from partners.tiers import load_tiers
    from regions.catalog import load_catalog

    config = pulumi.Config("platform")
    catalog = load_catalog(ROOT / "regions")
    spec_file = ROOT / "partners" / f"{partner_id}.yaml"
    spec = load_spec(spec_file, f"partners/{partner_id}.yaml")
    if spec.id != partner_id:
        raise pulumi.RunError(f"partners/{partner_id}.yaml: id: is {spec.id!r}, the stack is partner-{partner_id}")
    for warning in check_against_catalog(spec, catalog, f"partners/{partner_id}.yaml"):
        pulumi.log.warn(warning)
    region = catalog.region(spec.home_region)
    region_ref = stack_reference(f"region-{spec.home_region}")
    global_ref = stack_reference("global")

    providers = [
        aws.Provider(
            "aws",
            region=region.aws_region,
            default_tags=aws.ProviderDefaultTagsArgs(
                tags={"platform:partner": spec.id, "platform:region": region.code, "platform:managed-by": "platformctl"}
            ),
        ),
        k8s.Provider("k8s", kubeconfig=region_ref.get_output("kubeconfig"), enable_server_side_apply=True),
        kong.Provider(
            "kong", kong_admin_uri=config.require("kongAdminUrl"), kong_admin_token=config.get_secret("kongAdminToken")
        ),
        snowflake.Provider(
            "snowflake",
            organization_name=config.require("snowflakeOrganization"),
            account_name=region_ref.get_output("snowflake_account"),
            user="PLATFORMCTL",
            authenticator="SNOWFLAKE_JWT",
            private_key=global_ref.get_output("snowflake_admin_keys")[spec.home_region],
            role="ACCOUNTADMIN",
        ),
    ]
    tenant = PartnerTenant(
        "tenant",
        PartnerTenantArgs(
            spec=spec,
            tier=load_tiers(ROOT / "partners" / "tiers.yaml")[spec.tier],
            retention_days=catalog.strictest_retention_days(spec.countries),
            name_prefix=config.require("namePrefix"),
            cluster_name=region_ref.get_output("cluster_name"),
            region_key_alias=region_ref.get_output("kms_key_alias"),
            region_buckets={
                "recordings": region_ref.get_output("recordings_bucket"),
                "transcripts": region_ref.get_output("transcripts_bucket"),
            },
            snowflake_database=region_ref.get_output("snowflake_database"),
            snowflake_warehouse=region_ref.get_output("snowflake_partner_warehouse"),
            rest_service_id=global_ref.get_output("kong_service_ids")["rest"],
            retain_data=not config.get_bool("purgeData"),
            active=not config.get("offboardedOn"),
        ),
        opts=pulumi.ResourceOptions(providers=providers),
    )
    pulumi.export("partner_id", spec.id)
    pulumi.export("tier", spec.tier)
    pulumi.export("home_region", spec.home_region)
    for key, value in tenant.outputs.items():
        pulumi.export(key, value)


main()
