"""A resource that names another planned resource by a plain string must depend on it.

Pulumi orders creates, replaces and deletes by dependencies, and a dependency exists only where an input came from
the other resource's output (or `depends_on` says so). A grant that passes "DB.SCHEMA" as text, or a Kubernetes object
that names its namespace by literal, races the object it names on the first `up` and outlives it on a destroy.

Precision over recall: only names of resources planned in the same stack whose own name input is a known string count
as targets, and only inputs whose whole value is that name count as references (for Snowflake also a fully qualified
name, or SQL text holding it as a qualified identifier; for AWS also its S3 ARN, outside policy documents). Kubernetes
references are read only from the fields that name another object (namespace, service account, secret, config map,
role, scale target, claim), so labels, container and port names never match."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policies.model import Finding, Resource, StackContext

UNKNOWN = "[unknown]"
SECRET = "[secret]"

_IDENT = r'(?:"[^".]+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QUALIFIED = re.compile(rf"^{_IDENT}(?:\.{_IDENT}){{0,2}}$")
_QUALIFIED_IN_SQL = re.compile(rf"(?<![A-Za-z0-9_$\".]){_IDENT}(?:\.{_IDENT}){{1,2}}(?![A-Za-z0-9_$\"])")
_SQL_KEYS = {"statement", "execute", "revert", "query", "body"}
_SKIPPED_KEYS = {"comment", "description", "tags", "tagsAll", "labels", "annotations"}
_S3_ARN = re.compile(r"^arn:aws[a-z-]*:s3:::([^/]+)(?:/.*)?$")

# Kubernetes fields that name another object, and its kind (None: the kind is in a sibling `kind` field).
_K8S_NAME_FIELDS: dict[tuple[str, str], str | None] = {
    ("secretKeyRef", "name"): "Secret",
    ("secretRef", "name"): "Secret",
    ("configMapKeyRef", "name"): "ConfigMap",
    ("configMapRef", "name"): "ConfigMap",
    ("configMap", "name"): "ConfigMap",
    ("roleRef", "name"): None,
    ("scaleTargetRef", "name"): None,
}
_K8S_NAME_KEYS = {"serviceAccountName": "ServiceAccount", "secretName": "Secret", "claimName": "PersistentVolumeClaim"}
_K8S_CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass",
                      "PersistentVolume", "PriorityClass", "ValidatingWebhookConfiguration"}  # fmt: skip


@dataclass(frozen=True)
class _Target:
    urn: str
    """The named resource."""
    label: str
    """How it is shown: kind and name."""


def _k8s_kind(type_: str) -> str:
    return type_.rsplit(":", 1)[-1]


def _known(value: Any) -> bool:
    return isinstance(value, str) and value not in ("", UNKNOWN, SECRET)


def _snowflake_parts(text: str) -> tuple[str, ...]:
    # Unquoted identifiers are case-insensitive (stored upper case); quoted ones keep their case.
    return tuple(p[1:-1] if p.startswith('"') else p.upper() for p in re.findall(_IDENT, text))


def _targets(resources: list[Resource]) -> dict[tuple[Any, ...], list[_Target]]:
    """Names of planned resources, keyed as references spell them."""
    targets: dict[tuple[Any, ...], list[_Target]] = {}

    def add(key: tuple[Any, ...], resource: Resource, label: str) -> None:
        targets.setdefault(key, []).append(_Target(resource.urn, label))

    for resource in resources:
        inputs = resource.inputs
        family = resource.type.split(":", 1)[0]
        if family == "kubernetes":
            metadata = inputs.get("metadata")
            if isinstance(metadata, Mapping) and _known(metadata.get("name")):
                kind = _k8s_kind(resource.type)
                namespace = "" if kind in _K8S_CLUSTER_KINDS else str(metadata.get("namespace") or "")
                add(("kubernetes", kind, namespace, metadata["name"]), resource, f"{kind} {metadata['name']!r}")
        elif family == "snowflake" and _known(inputs.get("name")):
            parts = [inputs[key] for key in ("database", "schema") if key in inputs]
            if all(_known(p) for p in parts):
                qualified = _snowflake_parts(".".join([*map(str, parts), inputs["name"]]))
                add(("snowflake", qualified), resource, f"{_k8s_kind(resource.type)} {'.'.join(qualified)}")
        elif family == "aws":
            own = inputs.get("bucket") if resource.type == "aws:s3/bucket:Bucket" else inputs.get("name")
            if _known(own):
                add(("aws", own), resource, f"{_k8s_kind(resource.type)} {own!r}")
    return targets


def _json_document(text: str) -> Any:
    """A JSON object or array inside a string (a policy document), else None."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _leaves(
    value: Any, path: str, skip_top: frozenset[str], documents: bool = True
) -> Iterator[tuple[str, str, Mapping[str, Any] | None]]:
    """(path, string, the mapping holding it) for every string leaf; with `documents`, JSON inside strings too."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in _SKIPPED_KEYS or (not path and key in skip_top):
                continue
            child = f"{path}.{key}" if path else str(key)
            if isinstance(item, str):
                yield child, item, value
                document = _json_document(item) if documents else None
                if document is not None:
                    yield from _leaves(document, child, frozenset())
            else:
                yield from _leaves(item, child, skip_top, documents)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield f"{path}[{index}]", item, None
            else:
                yield from _leaves(item, f"{path}[{index}]", skip_top, documents)


def _k8s_references(resource: Resource) -> Iterator[tuple[str, tuple[Any, ...]]]:
    metadata = resource.inputs.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    if _known(namespace):
        yield "metadata.namespace", ("kubernetes", "Namespace", "", namespace)
    if resource.type.startswith("kubernetes:helm.sh/") and _known(resource.inputs.get("namespace")):
        yield "namespace", ("kubernetes", "Namespace", "", resource.inputs["namespace"])
    own_ns = namespace if _known(namespace) else ""
    yield from _k8s_walk(resource.inputs, "", "", own_ns)


def _k8s_walk(value: Any, path: str, parent_key: str, namespace: Any) -> Iterator[tuple[str, tuple[Any, ...]]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _k8s_walk(item, f"{path}[{index}]", parent_key, namespace)
        return
    if not isinstance(value, Mapping):
        return
    for key, item in value.items():
        child = f"{path}.{key}" if path else str(key)
        if key in _SKIPPED_KEYS:
            continue
        if _known(item):
            kind = _K8S_NAME_KEYS.get(key)
            if (parent_key, key) in _K8S_NAME_FIELDS:
                kind = _K8S_NAME_FIELDS[(parent_key, key)] or value.get("kind")
            if isinstance(kind, str):
                scope = "" if kind in _K8S_CLUSTER_KINDS else namespace
                yield child, ("kubernetes", kind, scope, item)
            if key == "name" and parent_key == "subjects" and value.get("kind") == "ServiceAccount":
                yield child, ("kubernetes", "ServiceAccount", value.get("namespace") or namespace, item)
        elif isinstance(item, Mapping | list):
            yield from _k8s_walk(item, child, str(key), namespace)


def _snowflake_references(resource: Resource) -> Iterator[tuple[str, tuple[str, ...]]]:
    for path, text, holder in _leaves(resource.inputs, "", frozenset({"name"})):
        key = path.rsplit(".", 1)[-1]
        if key in _SQL_KEYS:
            for match in _QUALIFIED_IN_SQL.finditer(text):
                yield path, _snowflake_parts(match.group(0))
            continue
        if not _known(text) or not _QUALIFIED.match(text):
            continue
        if key == "schema" and holder is not None and _known(holder.get("database")) and "." not in text:
            yield path, _snowflake_parts(f"{holder['database']}.{text}")
        else:
            yield path, _snowflake_parts(text)


def _aws_references(resource: Resource) -> Iterator[tuple[str, str]]:
    own = {"bucket"} if resource.type == "aws:s3/bucket:Bucket" else {"name", "namePrefix"}
    # Not inside policy documents: IAM accepts ARNs of resources that do not exist yet, so no order is needed there.
    for path, text, _ in _leaves(resource.inputs, "", frozenset(own), documents=False):
        if not _known(text):
            continue
        arn = _S3_ARN.match(text)
        yield path, arn.group(1) if arn else text


def _closure(resources: list[Resource]) -> Any:
    """urn -> every URN it waits for through dependencies and property dependencies, transitively. (The SDK sends a
    dependency on a component as dependencies on the resources inside it, so those appear here by their own URN.)"""
    direct = {
        r.urn: set(r.dependencies) | {u for urns in r.property_dependencies.values() for u in urns} for r in resources
    }
    memo: dict[str, set[str]] = {}

    def reach(urn: str) -> set[str]:
        if urn not in memo:
            seen: set[str] = set()
            pending = list(direct.get(urn, ()))
            while pending:
                item = pending.pop()
                if item not in seen:
                    seen.add(item)
                    pending.extend(memo.get(item, direct.get(item, ())))
            memo[urn] = seen
        return memo[urn]

    return reach


def _ancestors(urn: str, parents: dict[str, str]) -> set[str]:
    found: set[str] = set()
    current = parents.get(urn, "")
    while current and current not in found:
        found.add(current)
        current = parents.get(current, "")
    return found


def check_named_without_dependency(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """A resource input naming another planned resource by a plain string, without depending on it."""
    targets = _targets(resources)
    if not targets:
        return
    reach = _closure(resources)
    parents = {r.urn: r.parent for r in resources}
    for resource in resources:
        family = resource.type.split(":", 1)[0]
        found: list[tuple[str, list[_Target]]] = []
        if family == "kubernetes":
            found = [(path, targets[key]) for path, key in _k8s_references(resource) if key in targets]
        elif family == "snowflake":
            for path, parts in _snowflake_references(resource):
                # The most specific planned object the name points into (a table before its schema and database).
                for length in range(len(parts), 0, -1):
                    if ("snowflake", parts[:length]) in targets:
                        found.append((path, targets[("snowflake", parts[:length])]))
                        break
        elif family == "aws":
            found = [(p, targets[("aws", name)]) for p, name in _aws_references(resource) if ("aws", name) in targets]
        if not found:
            continue
        waits_for = reach(resource.urn) | _ancestors(resource.urn, parents)  # a child is created after its parent
        for path, named in found:
            others = [t for t in named if t.urn != resource.urn]
            if not others or any(t.urn in waits_for for t in others):
                continue
            target = others[0]
            yield (
                resource.urn,
                f"input {path} names {target.label} ({target.urn.rsplit('::', 1)[-1]}) as a plain string without "
                "depending on it: pass that resource's output so the engine orders them",
            )
