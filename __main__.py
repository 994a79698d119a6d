"""The platform's Pulumi program: the stack name picks what is built.

global            Kong control plane entities, DNS zone, Snowflake accounts
region-<code>     one RegionalDeployment with its launched countries
partner-<id>      one PartnerTenant, from partners/<id>.yaml
integration-<id>  one IntegrationSandbox (every offered region + Kong), from integrations/<id>.yaml
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pulumi

from components.outputs import GlobalOutput, RegionOutput
from fleet.repo import Repo, for_program
from foundation.errors import PlatformError
from foundation.naming import meter_host, voice_host
from foundation.stacks import StackKind, parse_stack_name

if TYPE_CHECKING:
    from components.integration_sandbox import IntegrationSandbox
    from integrations.spec import IntegrationSpec

ROOT = Path(__file__).absolute().parent  # not resolve(): a dry-run overlay links this file


def main() -> None:
    try:
        stack = parse_stack_name(pulumi.get_stack())
        builders = {
            StackKind.GLOBAL: build_global,
            StackKind.REGION: build_region,
            StackKind.PARTNER: build_partner,
            StackKind.INTEGRATION: build_integration,
        }
        builders[stack.kind](for_program(ROOT), stack.subject)
    except PlatformError as exc:
        # RunError reports the message without a Python traceback.
        raise pulumi.RunError(str(exc)) from None


def stack_reference(stack: str) -> pulumi.StackReference:
    org = pulumi.Config("platform").require("stackOrg")
    return pulumi.StackReference(f"{org}/{pulumi.get_project()}/{stack}")


def build_global(repo: Repo, _: str) -> None:
    import pulumi_aws as aws
    import pulumi_kong as kong
    import pulumi_snowflake as snowflake

    from components.kong_gateway import KongGateway, KongGatewayArgs
    from components.snowflake_organization import SNOWFLAKE_TYPES, SnowflakeOrganization, SnowflakeOrganizationArgs
    from components.snowflake_preview import features_for

    config = pulumi.Config("platform")
    catalog = repo.catalog()
    kong_provider = kong.Provider(
        "kong", kong_admin_uri=config.require("kongAdminUrl"), kong_admin_token=config.get_secret("kongAdminToken")
    )
    gateway = KongGateway(
        "gateway",
        KongGatewayArgs(
            apis=repo.api_catalog(),
            tiers=repo.tiers(),
            dns_zone=config.require("dnsZone"),
        ),
        opts=pulumi.ResourceOptions(providers=[kong_provider]),
    )
    from components.webhooks_gateway import WebhooksGateway, WebhooksGatewayArgs

    webhooks = WebhooksGateway(
        "webhooks",
        WebhooksGatewayArgs(service_id=gateway.service_ids["webhooks"]),
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
    org_provider = snowflake.Provider(
        "snowflake-org", role="ORGADMIN", preview_features_enabled=features_for(SNOWFLAKE_TYPES)
    )
    org = SnowflakeOrganization(
        "snowflake-org",
        SnowflakeOrganizationArgs(
            regions=tuple(catalog.regions.values()), admin_email=config.require("snowflakeAdminEmail")
        ),
        opts=pulumi.ResourceOptions(providers=[org_provider]),
    )
    pulumi.export(GlobalOutput.KONG_SERVICE_IDS, gateway.service_ids)
    pulumi.export(GlobalOutput.KONG_RATE_LIMIT_PLANS, gateway.rate_limits)
    pulumi.export(GlobalOutput.KONG_CLUSTER_ENDPOINT, config.require("kongClusterEndpoint"))
    pulumi.export(GlobalOutput.KONG_TELEMETRY_ENDPOINT, config.require("kongTelemetryEndpoint"))
    pulumi.export(GlobalOutput.KONG_CLUSTER_CERT, gateway.cluster_cert)
    pulumi.export(GlobalOutput.KONG_CLUSTER_KEY, gateway.cluster_key)
    pulumi.export(GlobalOutput.DNS_ZONE_ID, zone.zone_id)
    pulumi.export(GlobalOutput.DNS_ZONE_NAME, zone.name)
    pulumi.export(GlobalOutput.SNOWFLAKE_ACCOUNTS, org.accounts)
    pulumi.export(GlobalOutput.SNOWFLAKE_ADMIN_KEYS, org.admin_keys)
    pulumi.export(GlobalOutput.METER_KONG_TOKEN, gateway.meter_token)
    pulumi.export(GlobalOutput.KONG_METER_SERVICE_ID, gateway.meter_service_id)
    pulumi.export(GlobalOutput.WEBHOOKS_KONG_TOKEN, webhooks.kong_token)


def build_region(repo: Repo, code: str) -> None:
    from components.regional_deployment import RegionalDeployment, RegionalDeploymentArgs
    from fleet.checks import launched_country_problems
    from gateway.voice import parse_voice_upstream

    config = pulumi.Config("platform")
    catalog = repo.catalog()
    if code not in catalog.regions:
        raise pulumi.RunError(f"stack region-{code}: {code!r} is not a region of regions/regions.yaml")
    version_problem = catalog.cloud.standard_support_problem(config.require("kubernetesVersion"), datetime.date.today())
    if version_problem:
        raise pulumi.RunError(f"stack region-{code}: platform:kubernetesVersion: {version_problem}")
    launched = config.get_object("launchedCountries") or []
    problems = launched_country_problems(catalog, code, launched, f"stacks/Pulumi.region-{code}.yaml")
    if problems:
        raise pulumi.RunError("; ".join(str(p) for p in problems))
    stack_file = f"stacks/Pulumi.region-{code}.yaml"
    stripe_mode = config.get("stripeMode") or "test"
    if stripe_mode not in ("test", "live"):
        raise pulumi.RunError(f"{stack_file}: platform:stripeMode: must be test or live, not {stripe_mode[:40]!r}")
    try:
        voice_upstream = parse_voice_upstream(config.require("voiceUpstream"))
    except ValueError as exc:
        raise pulumi.RunError(f"{stack_file}: platform:voiceUpstream: {exc}") from None
    global_ref = stack_reference("global")
    zone = global_ref.get_output(GlobalOutput.DNS_ZONE_NAME)
    meter_public_url = zone.apply(lambda name: f"https://{meter_host(code, name)}")
    import pulumi_kong as kong

    kong_provider = kong.Provider(
        "kong", kong_admin_uri=config.require("kongAdminUrl"), kong_admin_token=config.get_secret("kongAdminToken")
    )
    deployment = RegionalDeployment(
        "region",
        RegionalDeploymentArgs(
            region=catalog.region(code),
            launched=tuple(catalog.country(cc) for cc in launched),
            retention_days=catalog.strictest_retention_days(launched),
            name_prefix=config.require("namePrefix"),
            kubernetes_version=config.require("kubernetesVersion"),
            kong_cluster_endpoint=global_ref.get_output(GlobalOutput.KONG_CLUSTER_ENDPOINT),
            kong_telemetry_endpoint=global_ref.get_output(GlobalOutput.KONG_TELEMETRY_ENDPOINT),
            kong_cluster_cert=global_ref.get_output(GlobalOutput.KONG_CLUSTER_CERT),
            kong_cluster_key=global_ref.get_output(GlobalOutput.KONG_CLUSTER_KEY),
            dns_zone_id=global_ref.get_output(GlobalOutput.DNS_ZONE_ID),
            acme_email=config.require("acmeEmail"),
            snowflake_organization=config.require("snowflakeOrganization"),
            snowflake_account=global_ref.get_output(GlobalOutput.SNOWFLAKE_ACCOUNTS)[code],
            snowflake_private_key=global_ref.get_output(GlobalOutput.SNOWFLAKE_ADMIN_KEYS)[code],
            meter_image=config.require("servicesImage"),
            meter_public_url=meter_public_url,
            meter_kong_token=global_ref.get_output(GlobalOutput.METER_KONG_TOKEN),
            meter_host=zone.apply(lambda name: meter_host(code, name)),
            kong_meter_service_id=global_ref.get_output(GlobalOutput.KONG_METER_SERVICE_ID),
            webhooks_kong_token=global_ref.get_output(GlobalOutput.WEBHOOKS_KONG_TOKEN),
            dns_zone_name=zone,
            twilio_account_sid=config.get_secret("twilioAccountSid") or "",
            twilio_auth_token=config.get_secret("twilioAuthToken") or "",
            stripe_api_key=config.get_secret("stripeApiKey") or "",
            stripe_mode="live" if stripe_mode == "live" else "test",
            voice_host=zone.apply(lambda name: voice_host(code, name)),
            voice_upstream=voice_upstream,
            kong_admin_url=config.require("kongAdminUrl"),
            kong_admin_token=config.get_secret("kongAdminToken") or "",
        ),
        # The region routes its own meter and voice hosts through the control plane (Kong entities are global).
        opts=pulumi.ResourceOptions(providers=[kong_provider]),
    )
    for key, value in deployment.outputs.items():
        pulumi.export(key, value)
    # Public endpoints in the platform zone: Twilio calls the voice endpoint (through the regional gateway) and posts
    # call status to the meter (`meter_public_url`, exported with the deployment's outputs), whose signed callback
    # URL names the partner.
    pulumi.export(
        RegionOutput.VOICE_ENDPOINT_URL, zone.apply(lambda name: f"https://{voice_host(code, name)}/twilio/voice")
    )


def build_partner(repo: Repo, partner_id: str) -> None:
    import pulumi_aws as aws
    import pulumi_kong as kong
    import pulumi_kubernetes as k8s
    import pulumi_snowflake as snowflake

    from components.install_row import InstallRow, InstallRowArgs
    from components.partner_tenant import SNOWFLAKE_TYPES, PartnerTenant, PartnerTenantArgs
    from components.partner_terms import PartnerTermsRow, PartnerTermsRowArgs
    from components.snowflake_preview import features_for
    from integrations.payouts import install_row
    from partners.telephony import number_slots
    from partners.terms import partner_terms
    from regions.network import address_layout

    config = pulumi.Config("platform")
    catalog = repo.catalog()
    spec = repo.spec(partner_id)  # parsed and checked against the catalog once per run
    for warning in repo.spec_warnings(partner_id):
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
        k8s.Provider("k8s", kubeconfig=region_ref.get_output(RegionOutput.KUBECONFIG), enable_server_side_apply=True),
        kong.Provider(
            "kong", kong_admin_uri=config.require("kongAdminUrl"), kong_admin_token=config.get_secret("kongAdminToken")
        ),
        snowflake.Provider(
            "snowflake",
            organization_name=config.require("snowflakeOrganization"),
            account_name=region_ref.get_output(RegionOutput.SNOWFLAKE_ACCOUNT),
            user="PLATFORMCTL",
            authenticator="SNOWFLAKE_JWT",
            private_key=global_ref.get_output(GlobalOutput.SNOWFLAKE_ADMIN_KEYS)[spec.home_region],
            role="ACCOUNTADMIN",
            preview_features_enabled=features_for(SNOWFLAKE_TYPES),
        ),
    ]
    tenant = PartnerTenant(
        "tenant",
        PartnerTenantArgs(
            spec=spec,
            tier=repo.tiers()[spec.tier],
            retention_days=catalog.strictest_retention_days(spec.countries),
            name_prefix=config.require("namePrefix"),
            cluster_name=region_ref.get_output(RegionOutput.CLUSTER_NAME),
            region_key_alias=region_ref.get_output(RegionOutput.KMS_KEY_ALIAS),
            region_buckets={
                "recordings": region_ref.get_output(RegionOutput.RECORDINGS_BUCKET),
                "transcripts": region_ref.get_output(RegionOutput.TRANSCRIPTS_BUCKET),
            },
            snowflake_database=region_ref.get_output(RegionOutput.SNOWFLAKE_DATABASE),
            snowflake_warehouse=region_ref.get_output(RegionOutput.SNOWFLAKE_PARTNER_WAREHOUSE),
            apis=repo.api_catalog(),
            kong_service_ids=global_ref.get_output(GlobalOutput.KONG_SERVICE_IDS),
            dns_zone=config.require("dnsZone"),
            dns_zone_id=global_ref.get_output(GlobalOutput.DNS_ZONE_ID),
            gateway_hostname=region_ref.get_output(RegionOutput.GATEWAY_HOSTNAME),
            # Set by platformctl after it checked the partner's TXT proof; naming the domain, so a changed domain
            # needs a new proof.
            domain_verified=config.get("domainVerified") == spec.domain,
            endpoint_cidrs=tuple(str(cidr) for cidr in address_layout(region).endpoints),
            retain_data=not config.get_bool("purgeData"),
            active=not config.get("offboardedOn"),
            number_slots=tuple(number_slots(spec)),
            bundle_required_slots=frozenset(
                slot.key
                for slot in number_slots(spec)
                if (needs := repo.telephony().requirements(slot.country, slot.type)) is not None
                and needs.bundle == "required"
            ),
            voice_endpoint_url=region_ref.get_output(RegionOutput.VOICE_ENDPOINT_URL),
            meter_public_url=region_ref.get_output(RegionOutput.METER_PUBLIC_URL),
            keep_numbers=not (config.get_bool("purgeData") or config.get_bool("releaseNumbers")),
        ),
        opts=pulumi.ResourceOptions(providers=providers),
    )
    terms = partner_terms(
        spec,
        repo.tiers(),
        repo.prices(),
        stripe_account=_stripe_account(config.get("stripeAccount"), partner_id),
        offboarded_on=_offboarded_on(config.get("offboardedOn"), partner_id),
    )
    # The PARTNERS row in the home region's warehouse, through a provider of its own that names a warehouse to run
    # the MERGE on (the tenant's provider names none; its resources need none).
    terms_provider = snowflake.Provider(
        "snowflake-terms",
        organization_name=config.require("snowflakeOrganization"),
        account_name=region_ref.get_output(RegionOutput.SNOWFLAKE_ACCOUNT),
        user="PLATFORMCTL",
        authenticator="SNOWFLAKE_JWT",
        private_key=global_ref.get_output(GlobalOutput.SNOWFLAKE_ADMIN_KEYS)[spec.home_region],
        role="ACCOUNTADMIN",
        warehouse=region_ref.get_output(RegionOutput.SNOWFLAKE_PARTNER_WAREHOUSE),
    )
    PartnerTermsRow(
        "terms",
        PartnerTermsRowArgs(
            partner_id=spec.id, database=region_ref.get_output(RegionOutput.SNOWFLAKE_DATABASE), terms=terms
        ),
        opts=pulumi.ResourceOptions(providers=[terms_provider]),
    )
    # Its INSTALLS rows, on the same provider (integrations/payouts.py); an offboarded partner's are dropped, which
    # dates them removed (its integration stacks drop its consumers alike: Repo.installations).
    for integration_id in () if config.get("offboardedOn") else spec.integrations:
        InstallRow(
            f"install-{integration_id}",
            InstallRowArgs(
                database=region_ref.get_output("snowflake_database"),
                row=install_row(catalog, repo.integration(integration_id), spec.id, spec.billing.currency),
            ),
            opts=pulumi.ResourceOptions(providers=[terms_provider]),
        )
    pulumi.export("partner_id", spec.id)
    pulumi.export("tier", spec.tier)
    pulumi.export("home_region", spec.home_region)
    for key, value in tenant.outputs.items():
        pulumi.export(key, value)


def _stripe_account(value: str | None, stack_id: str, kind: str = "partner") -> str | None:
    """`platform:stripeAccount` (acct_..., written by `platformctl billing connect` or `connect-developer`), or None
    while unset."""
    import re

    from foundation.errors import InputError
    from foundation.naming import STRIPE_ACCOUNT_PATTERN

    if not value:
        return None
    if not re.fullmatch(STRIPE_ACCOUNT_PATTERN, value):
        raise InputError.single(
            f"stacks/Pulumi.{kind}-{stack_id}.yaml", "config.platform:stripeAccount", "is not a Stripe account id"
        )
    return value


def _offboarded_on(value: str | None, partner_id: str) -> datetime.date | None:
    """`platform:offboardedOn` as a date (set by `platformctl offboard-partner`), or None while active."""
    from fleet.checks import parse_offboarding_date

    if not value:
        return None
    return parse_offboarding_date(value, f"stacks/Pulumi.partner-{partner_id}.yaml", datetime.date.today())


def build_integration(repo: Repo, integration_id: str) -> None:
    import pulumi_kong as kong
    import pulumi_kubernetes as k8s

    from components.integration_sandbox import IntegrationSandbox, IntegrationSandboxArgs
    from integrations.review import published_spec

    config = pulumi.Config("platform")
    spec, record = published_spec(repo, integration_id)  # the approved, published digest or an InputError
    providers = {
        region: k8s.Provider(
            f"k8s-{region}",
            kubeconfig=stack_reference(f"region-{region}").get_output(RegionOutput.KUBECONFIG),
            enable_server_side_apply=True,
        )
        for region in spec.regions
    }
    kong_provider = kong.Provider(
        "kong", kong_admin_uri=config.require("kongAdminUrl"), kong_admin_token=config.get_secret("kongAdminToken")
    )
    sandbox = IntegrationSandbox(
        "integration",
        IntegrationSandboxArgs(
            spec=spec,
            digest=spec.digest(),
            rules=repo.review_rules(),
            scopes=repo.api_catalog().scopes,
            kubernetes=providers,
            kong_service_ids=stack_reference("global").get_output(GlobalOutput.KONG_SERVICE_IDS),
            installations=tuple(repo.installations(integration_id)),
            suspended=record.state == "suspended",
        ),
        opts=pulumi.ResourceOptions(providers=[kong_provider]),
    )
    conformance(repo, spec, sandbox, providers, suspended=record.state == "suspended")
    developer_terms(repo, spec, config.get("stripeAccount"))
    for key, value in sandbox.outputs.items():
        pulumi.export(key, value)


def conformance(
    repo: Repo,
    spec: IntegrationSpec,
    sandbox: IntegrationSandbox,
    providers: Mapping[str, pulumi.ProviderResource],
    suspended: bool,
) -> None:
    """Per offered region, in the order a first `up` needs: the sandbox's system namespace, then the job's warehouse
    access (ConformanceRecording: its Secret lives there), then the job once the workload is up and the Secret
    exists. Suspended: no job; the access stays (the results so far remain, and the role can only add results)."""
    import pulumi_snowflake as snowflake

    from components.conformance_job import ConformanceJob, ConformanceJobArgs
    from components.conformance_recording import ConformanceRecording, ConformanceRecordingArgs

    config = pulumi.Config("platform")
    admin_keys = stack_reference("global").get_output(GlobalOutput.SNOWFLAKE_ADMIN_KEYS)
    for region, kubernetes in providers.items():
        account = stack_reference(f"region-{region}").get_output(RegionOutput.SNOWFLAKE_ACCOUNT)
        warehouse = snowflake.Provider(
            f"snowflake-conformance-{region}",
            organization_name=config.require("snowflakeOrganization"),
            account_name=account,
            user="PLATFORMCTL",
            authenticator="SNOWFLAKE_JWT",
            private_key=admin_keys[region],
            role="ACCOUNTADMIN",
        )
        recording = ConformanceRecording(
            f"{sandbox.prefixes[region]}-recording",
            ConformanceRecordingArgs(
                integration_id=spec.id,
                region=region,
                snowflake_organization=config.require("snowflakeOrganization"),
                snowflake_account=account,
                namespace_ready=[sandbox.system_namespaces[region]],
            ),
            opts=pulumi.ResourceOptions(
                providers=[warehouse, kubernetes], depends_on=[sandbox.system_namespaces[region]]
            ),
        )
        if suspended:
            continue
        after = [*sandbox.deployed[region], recording]
        ConformanceJob(
            sandbox.prefixes[region],
            ConformanceJobArgs(
                spec=spec,
                digest=spec.digest(),
                rules=repo.review_rules(),
                region=region,
                conformance_image=config.require("servicesImage"),
                after=after,
                moved_from=sandbox,
            ),
            opts=pulumi.ResourceOptions(provider=kubernetes, depends_on=after),
        )


def developer_terms(repo: Repo, spec: IntegrationSpec, stripe_account: str | None) -> None:
    """The developer's rows in its home region's warehouse (components/integration_terms.py)."""
    import pulumi_snowflake as snowflake

    from components.integration_terms import IntegrationTerms, IntegrationTermsArgs
    from integrations.payouts import developer_home, developer_row, install_row, integration_row

    catalog = repo.catalog()
    home, _ = developer_home(catalog, spec)
    config = pulumi.Config("platform")
    region_ref = stack_reference(f"region-{home}")
    provider = snowflake.Provider(
        "snowflake-terms",
        organization_name=config.require("snowflakeOrganization"),
        account_name=region_ref.get_output("snowflake_account"),
        user="PLATFORMCTL",
        authenticator="SNOWFLAKE_JWT",
        private_key=stack_reference("global").get_output("snowflake_admin_keys")[home],
        role="ACCOUNTADMIN",
        warehouse=region_ref.get_output("snowflake_partner_warehouse"),
    )
    partners = [repo.spec(pid) for pid in repo.installations(spec.id)]
    IntegrationTerms(
        "terms",
        IntegrationTermsArgs(
            database=region_ref.get_output("snowflake_database"),
            developer=developer_row(catalog, spec, _stripe_account(stripe_account, spec.id, "integration")),
            integration=integration_row(catalog, spec, repo.review_rules()),
            installs=[install_row(catalog, spec, p.id, p.billing.currency) for p in partners if p.home_region != home],
        ),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )


main()
