"""Checks that a plan will deploy as planned: what the providers and the cluster's API server would refuse.

Pure functions over one stack's planned resources, like the rules in `policies/rules.py` (which lists them)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from components.snowflake_preview import PREVIEW_FEATURES

if TYPE_CHECKING:
    from policies.model import Finding, Resource, StackContext

UNKNOWN = "[unknown]"
SECRET = "[secret]"


def _provider_urn(reference: str) -> str:
    """A provider reference is `<provider urn>::<provider id>`."""
    return reference.rsplit("::", 1)[0] if reference.count("::") > 3 else reference


def _list_input(value: Any) -> list[Any] | None:
    """Providers receive structured config as JSON text; either form is read."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, list) else None


def check_snowflake_preview_features(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Every preview-gated Snowflake resource is managed by a provider that enables its preview feature."""
    providers = {r.urn: r for r in resources if r.type == "pulumi:providers:snowflake"}
    for resource in resources:
        feature = PREVIEW_FEATURES.get(resource.type)
        if feature is None:
            continue
        provider = providers.get(_provider_urn(resource.provider)) if resource.provider else None
        if provider is None:
            yield (
                resource.urn,
                (
                    f"{resource.type} is a pulumi-snowflake preview feature and the default provider does not enable "
                    f"{feature!r}; give it a provider with preview_features_enabled=[{feature!r}]"
                ),
            )
            continue
        enabled = _list_input(provider.inputs.get("previewFeaturesEnabled"))
        if enabled is None or feature not in enabled:
            yield (
                resource.urn,
                (
                    f"{resource.type} needs preview feature {feature!r}, which its provider {provider.name} does not "
                    "enable (preview_features_enabled); the real engine would refuse to create it"
                ),
            )


def _api_version(token: str) -> tuple[str, str] | None:
    """kubernetes:<group>/<version>:<Kind> -> (apiVersion, kind); None for Helm, kustomize, YAML and providers."""
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    group, version = parts[1].split("/", 1)
    if group in ("helm.sh", "kustomize", "yaml") or not version.startswith("v"):
        return None
    if not _built_in(group):
        return None  # a custom resource (cert-manager, ...): its schema ships with its CRD, not with Kubernetes
    return (version if group == "core" else f"{group}/{version}"), parts[2]


BUILT_IN_GROUPS = frozenset({"core", "apps", "batch", "policy", "autoscaling", "extensions"})
"""API groups Kubernetes itself serves besides the `*.k8s.io` ones (kubernetes-validate has their schemas)."""


def _built_in(group: str) -> bool:
    return group in BUILT_IN_GROUPS or group.endswith(".k8s.io")


def _placeholders(value: Any) -> Any:
    """What the plan knows of an object: a field whose value is unknown or secret until apply could have any shape
    (a secret `stringData` is a whole mapping), so it is left out; a list item stands in as a string."""
    if isinstance(value, dict):
        return {key: _placeholders(item) for key, item in value.items() if item not in (UNKNOWN, SECRET)}
    if isinstance(value, list):
        return [_placeholders(item) for item in value]
    if value in (UNKNOWN, SECRET):
        return "planned-value"
    return value


def manifest_of(resource: Resource) -> dict[str, Any] | None:
    """The object a Kubernetes resource sends to the API server (apiVersion and kind from its type token)."""
    kinds = _api_version(resource.type)
    if kinds is None:
        return None
    body = _placeholders(resource.inputs)
    body["apiVersion"], body["kind"] = kinds
    return dict(body)


def check_kubernetes_schema(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Every Kubernetes object validates, strictly, against the OpenAPI schema of the cluster's version."""
    import jsonschema
    import kubernetes_validate

    version = context.kubernetes_version
    if version is None:
        return
    for resource in resources:
        manifest = manifest_of(resource)
        if manifest is None:
            continue
        try:
            _schema_validator(version, manifest["apiVersion"], manifest["kind"]).validate(manifest)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path) or "(object)"
            yield (
                resource.urn,
                f"{manifest['kind']} does not validate against Kubernetes {version}: {where}: {exc.message}",
            )
        except kubernetes_validate.SchemaNotFoundError:
            yield resource.urn, f"{manifest['apiVersion']} {manifest['kind']} is not served by Kubernetes {version}"
        except kubernetes_validate.utils.VersionNotSupportedError:
            yield resource.urn, f"kubernetes-validate has no schema for Kubernetes {version}; upgrade it"
            return


@lru_cache(maxsize=256)
def _schema_validator(desired_version: str, api_version: str, kind: str) -> Any:
    """The strict validator `kubernetes_validate.validate(manifest, version, strict=True)` builds for this kind,
    built once per run: the library reads and parses the kind's schema and its multi-megabyte `_definitions.json`
    on every call, which made schema checks most of a plan's policy time. Same schema files, same selection of the
    newest schema version not newer than the cluster's (kubernetes-validate 1.37, `utils.validate`)."""
    import re

    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    desired = desired_version.removeprefix("v")
    if utils.major_minor(desired) > utils.latest_version():
        raise utils.VersionNotSupportedError(version=utils.major_minor(desired))
    version = [v for v in utils.all_versions() if utils.major_minor(v) <= utils.major_minor(desired)][-1]
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    try:
        schema = utils.schema_contents(f"{schema_dir}/{kind.lower()}-{api}.json", desired)
    except FileNotFoundError:
        raise utils.SchemaNotFoundError(
            version=utils.major_minor(desired), kind=kind, api_version=api_version
        ) from None
    registry = Resource.from_contents(_definitions(schema_dir, desired)) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@lru_cache(maxsize=8)
def _definitions(schema_dir: str, desired: str) -> Any:
    from kubernetes_validate import utils

    return utils.schema_contents(f"{schema_dir}/_definitions.json", desired)
