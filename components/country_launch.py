"""CountryLaunch: what a launched country adds to its region - telephony, payment, language and compliance settings."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from regions.catalog import Country


@dataclass(frozen=True)
class CountryLaunchArgs:
    country: Country
    """The catalog entry of the launched country."""
    namespace: pulumi.Input[str]
    """Platform namespace the runtime services read their country settings from."""


class CountryLaunch(pulumi.ComponentResource):
    def __init__(self, name: str, args: CountryLaunchArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:country_launch:CountryLaunch", name, None, opts)
        country = args.country
        compliance = country.compliance
        settings = k8s.core.v1.ConfigMap(
            f"{name}-settings",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"country-{country.code.lower()}",
                namespace=args.namespace,
                labels={"app.kubernetes.io/part-of": "platform", "platform/country": country.code},
            ),
            immutable=False,
            data={
                "telephony.json": json.dumps(
                    {"provider": country.telephony_provider, "time_zone": country.time_zone}, sort_keys=True
                ),
                "payments.json": json.dumps(
                    {"currency": country.currency, "methods": list(country.payment_methods)}, sort_keys=True
                ),
                "languages.json": json.dumps(
                    {"languages": list(country.languages), "voice": country.voice.model_dump(mode="json")},
                    sort_keys=True,
                ),
                "compliance.json": json.dumps(compliance.model_dump(mode="json"), sort_keys=True),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"settings": settings.metadata.name})
