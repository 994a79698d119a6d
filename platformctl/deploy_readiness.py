"""`validate --for-deploy STACK`: every config value a real `pulumi up` of the stack would use that is still a
placeholder (reserved example domains, empty admin token, missing Snowflake credentials, stand-in defaults).

What a stack reads is taken from the program itself (`__main__.py`, read as a syntax tree, never run): the config keys
each stack kind's builder asks for, and the outputs it reads from the stacks it references, traced back to the config
keys those stacks export verbatim. So a region stack is told about the global stack's Kong endpoints, which it
reads, and not about the global DNS zone, which it does not."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from fleet.repo import Repo
from fleet.stackconfig import SECRET_PLACEHOLDER
from foundation.errors import InputError, Problem
from foundation.stacks import GLOBAL, PROJECT, StackKind, StackName, parse_stack_name, region_stack

RESERVED_DOMAINS = ("example", "example.com", "example.net", "example.org", "test", "invalid", "localhost")
"""Names that never resolve to anyone's service: RFC 2606 section 2 and 3, RFC 6761 section 6."""

_HOST = re.compile(r"(?<![A-Za-z0-9-])((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63})")

DIY_BACKENDS = ("file://", "s3://", "gs://", "azblob://", "postgres://")
"""Self-managed Pulumi backends: their stack references use the literal organization `organization`."""

SNOWFLAKE_LOGIN = {
    "snowflake:organizationName": "SNOWFLAKE_ORGANIZATION_NAME",
    "snowflake:accountName": "SNOWFLAKE_ACCOUNT_NAME",
    "snowflake:user": "SNOWFLAKE_USER",
}
"""Provider settings a Snowflake provider without explicit arguments needs, and the environment variable that can
stand in for each (pulumi-snowflake 2.22.0, pulumi_snowflake/config/vars.py, read 2026-11-29)."""

SNOWFLAKE_SECRETS = {
    "snowflake:privateKey": "SNOWFLAKE_PRIVATE_KEY",
    "snowflake:password": "SNOWFLAKE_PASSWORD",
    "snowflake:token": "SNOWFLAKE_TOKEN",
}
"""Any one of these authenticates the Snowflake login above (same source)."""

DATA_FILES = {StackKind.GLOBAL: ("gateway/apis.yaml",)}
"""Catalog files a stack kind deploys as they are (the API catalog's CORS origins become the gateway's)."""

STAND_IN_DEFAULTS = {
    "platform:snowflakeOrganization": "the Snowflake organization that owns the regional accounts",
}
"""Declared defaults in Pulumi.yaml that stand in for an account-specific value: a stack that reads one sets it."""


@dataclass(frozen=True)
class ProgramReads:
    """What the program's builder for one stack kind reads."""

    config: frozenset[str] = frozenset()
    """Config keys (fully qualified) the builder asks for."""
    referenced: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Per referenced stack kind (global, region), the output names read from it."""
    exported_config: Mapping[str, str] = field(default_factory=dict)
    """Output name -> config key, for outputs that export a config value as it is."""
    snowflake_provider_without_login: bool = False
    """The builder creates a Snowflake provider with no account or credentials (they come from provider config)."""


def reserved_hosts(value: str) -> list[str]:
    """Host names (in a URL, an e-mail address, host:port or on their own) under a reserved example domain."""
    hosts = []
    for match in _HOST.finditer(value):
        host = match.group(1).lower().rstrip(".")
        if "." not in host:  # a bare word ("for example") is not a host name
            continue
        if any(host == d or host.endswith(f".{d}") for d in RESERVED_DOMAINS):
            hosts.append(host)
    return hosts


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _is_secret_set(value: Any) -> bool:
    return value == SECRET_PLACEHOLDER or (isinstance(value, str) and value.strip() != "")


# ---------------------------------------------------------------- what the program reads


_GETTERS = {"get", "require", "get_secret", "require_secret", "get_object", "require_object", "get_bool",
            "require_bool", "get_int", "require_int", "get_float", "require_float"}  # fmt: skip


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _reference_kind(call: ast.Call) -> str | None:
    """global / region / partner for `stack_reference("global")` or `stack_reference(f"region-{...}")`."""
    if not call.args:
        return None
    arg = call.args[0]
    text = _literal(arg)
    if text is None and isinstance(arg, ast.JoinedStr) and arg.values:
        text = _literal(arg.values[0])
    if text is None:
        return None
    return next((kind.value for kind in StackKind if text == kind.value or text.startswith(f"{kind.value}-")), None)


def _called_name(call: ast.Call) -> str | None:
    return call.func.id if isinstance(call.func, ast.Name) else None


def _config_namespace(call: ast.Call) -> str:
    return (_literal(call.args[0]) if call.args else None) or PROJECT


def _scan(function: ast.FunctionDef, functions: dict[str, ast.FunctionDef], seen: set[str]) -> dict[str, Any]:
    """Config keys, referenced outputs, config exports and bare Snowflake providers in a function and the module
    functions it calls."""
    seen.add(function.name)
    configs: dict[str, str] = {}  # variable -> config namespace
    refs: dict[str, str] = {}  # variable -> referenced stack kind
    keys: set[str] = set()
    referenced: dict[str, set[str]] = {}
    exported: dict[str, str] = {}
    bare_snowflake = False
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1:
            target = node.targets[0]
            func = node.value.func
            if isinstance(target, ast.Name):
                if isinstance(func, ast.Attribute) and func.attr == "Config":
                    configs[target.id] = _config_namespace(node.value)
                elif _called_name(node.value) == "stack_reference" and (kind := _reference_kind(node.value)):
                    refs[target.id] = kind
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = _called_name(node)
        if name in functions and name not in seen:
            inner = _scan(functions[name], functions, seen)
            keys |= inner["config"]
            for kind, outputs in inner["referenced"].items():
                referenced.setdefault(kind, set()).update(outputs)
            exported.update(inner["exported_config"])
            bare_snowflake = bare_snowflake or inner["bare_snowflake"]
        if not isinstance(func, ast.Attribute):
            continue
        owner = func.value
        key = _literal(node.args[0]) if node.args else None
        if func.attr in _GETTERS and key is not None:
            if isinstance(owner, ast.Name) and owner.id in configs:
                keys.add(f"{configs[owner.id]}:{key}")
            elif isinstance(owner, ast.Call) and isinstance(owner.func, ast.Attribute) and owner.func.attr == "Config":
                keys.add(f"{_config_namespace(owner)}:{key}")
        elif func.attr == "get_output" and key is not None and isinstance(owner, ast.Name) and owner.id in refs:
            referenced.setdefault(refs[owner.id], set()).add(key)
        elif func.attr == "export" and key is not None and len(node.args) > 1:
            value = node.args[1]
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and value.func.attr in _GETTERS
                and isinstance(value.func.value, ast.Name)
                and value.func.value.id in configs
                and value.args
                and (config_key := _literal(value.args[0]))
            ):
                exported[key] = f"{configs[value.func.value.id]}:{config_key}"
        elif func.attr == "Provider" and isinstance(owner, ast.Name) and owner.id == "snowflake":
            given = {kw.arg for kw in node.keywords}
            bare_snowflake = bare_snowflake or not ({"account_name", "user"} & given)
    return {
        "config": keys,
        "referenced": referenced,
        "exported_config": exported,
        "bare_snowflake": bare_snowflake,
    }


OUTPUT_NAMES = "components/outputs.py"
"""Where the program defines its stack output names (`GlobalOutput.DNS_ZONE_ID = "dns_zone_id"`, ...)."""


class _OutputNames(ast.NodeTransformer):
    """Replaces `Class.NAME` output-name constants (read from the program's OUTPUT_NAMES file) by their strings, so the
    scan sees `get_output(GlobalOutput.DNS_ZONE_ID)` as `get_output("dns_zone_id")`."""

    def __init__(self, path: Path) -> None:
        self.names: dict[tuple[str, str], str] = {}
        if path.is_file():
            classes = [n for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.ClassDef)]
            for node in classes:
                for item in node.body:
                    if isinstance(item, ast.AnnAssign | ast.Assign) and item.value is not None:
                        targets = [item.target] if isinstance(item, ast.AnnAssign) else item.targets
                        for target in targets:
                            if isinstance(target, ast.Name) and (text := _literal(item.value)) is not None:
                                self.names[(node.name, target.id)] = text

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.value, ast.Name) and (text := self.names.get((node.value.id, node.attr))) is not None:
            return ast.copy_location(ast.Constant(text), node)
        return self.generic_visit(node)


@cache
def program_reads(program: Path) -> dict[str, ProgramReads]:
    """Per stack kind, what its builder (`build_<kind>` in the program) reads."""
    source = program.read_text(encoding="utf-8")
    tree = _OutputNames(program.parent / OUTPUT_NAMES).visit(ast.parse(source, filename=str(program)))
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    reads = {}
    for kind in StackKind:
        builder = functions.get(f"build_{kind.value}")
        if builder is None:
            raise InputError.single(program.name, f"build_{kind.value}", "the program has no builder for this kind")
        found = _scan(builder, functions, set())
        reads[kind.value] = ProgramReads(
            config=frozenset(found["config"]),
            referenced={k: frozenset(v) for k, v in found["referenced"].items()},
            exported_config=found["exported_config"],
            snowflake_provider_without_login=found["bare_snowflake"],
        )
    return reads


# ---------------------------------------------------------------- the check


def _value_findings(
    display: str, key: str, value: Any, declared_default: bool, secret: bool, reader: str | None
) -> Iterator[Problem]:
    origin = "the declared default in Pulumi.yaml, not set in this file" if declared_default else "set in this file"
    via = f"; {reader}" if reader else ""
    if secret:
        return
    for path, text in _strings(value, ""):
        for host in reserved_hosts(text):
            where = f"{key}{'.' + path if path and not path.startswith('[') else path}"
            yield Problem(
                display,
                where,
                f"{text!r} names {host}, a reserved example domain that cannot be deployed ({origin}{via})",
            )


def check_stack(repo: Repo, stack: StackName, environ: Mapping[str, str] | None = None) -> list[Problem]:
    """Every placeholder a real deploy of `stack` would use, in the files where each must be set (every file read
    through `repo`, so a `validate` that checked the fleet first parses nothing twice)."""
    env = os.environ if environ is None else environ
    if not repo.has_stack(stack):
        raise InputError.single("arguments", "--for-deploy", f"stack {str(stack)!r} has no file in stacks/")
    reads = program_reads(repo.root / "__main__.py")[stack.kind.value]
    findings: list[Problem] = []
    findings += _own_config(repo, stack, reads, env)
    findings += _referenced_config(repo, stack, reads)
    if stack.kind is StackKind.PARTNER:
        findings += _partner_spec(repo, stack.subject)
    if stack.kind is StackKind.INTEGRATION:
        from platformctl.marketplace_readiness import stack_problems

        findings += stack_problems(repo, stack)
    for name in DATA_FILES.get(stack.kind, ()):
        findings += _data_file(repo, name)
    return list(dict.fromkeys(findings))


def _own_config(repo: Repo, stack: StackName, reads: ProgramReads, env: Mapping[str, str]) -> Iterator[Problem]:
    config = repo.stack_config(stack)
    decls = repo.declarations()
    display = f"stacks/{repo.stack_file(stack).name}"
    for key, value in config.values.items():
        declared_default = key not in config.file_values
        if declared_default and key not in reads.config:
            continue  # a default the program never reads for this kind of stack
        yield from _value_findings(display, key, value, declared_default, key in config.secret_keys, None)
    for key in sorted(reads.config):
        decl = decls.get(key)
        value = config.values.get(key)
        set_here = key in config.file_values
        if decl is not None and decl.secret and not _is_secret_set(value):
            yield Problem(display, key, f"is empty: set it with `pulumi config set --secret {key} ...`")
        elif decl is not None and decl.secret and set_here and value != SECRET_PLACEHOLDER:
            yield Problem(display, key, "is a secret but stored in clear: set it with `pulumi config set --secret`")
        if key in STAND_IN_DEFAULTS and not set_here:
            yield Problem(display, key, f"is Pulumi.yaml's stand-in default {value!r}: set {STAND_IN_DEFAULTS[key]}")
    stack_org = f"{PROJECT}:stackOrg"
    if stack_org in reads.config and stack_org not in config.file_values:
        backend = env.get("PULUMI_BACKEND_URL", "")
        if backend and not backend.startswith(DIY_BACKENDS):
            yield Problem(
                display,
                stack_org,
                f"is Pulumi.yaml's default {config.values.get(stack_org)!r}, which only self-managed backends use; "
                f"PULUMI_BACKEND_URL is {backend}: set your Pulumi Cloud organization",
            )
    if reads.snowflake_provider_without_login:
        yield from _snowflake_login(display, config.values, env)


def _snowflake_login(display: str, values: Mapping[str, Any], env: Mapping[str, str]) -> Iterator[Problem]:
    if values.get("snowflake:profile") or env.get("SNOWFLAKE_PROFILE"):
        return  # the login comes from the named profile of the provider's TOML file
    for key, variable in SNOWFLAKE_LOGIN.items():
        if not values.get(key) and not env.get(variable):
            yield Problem(display, key, f"is missing: the Snowflake provider needs it (or ${variable})")
    if not any(_is_secret_set(values.get(key)) or env.get(var) for key, var in SNOWFLAKE_SECRETS.items()):
        yield Problem(
            display,
            "snowflake:privateKey",
            "is missing: the Snowflake provider needs a credential (`pulumi config set --secret snowflake:privateKey`"
            ", or snowflake:password / snowflake:token, or their SNOWFLAKE_* variables)",
        )


def _referenced_config(repo: Repo, stack: StackName, reads: ProgramReads) -> Iterator[Problem]:
    """Config values of the stacks this one references that reach it through their outputs."""
    for kind, outputs in sorted(reads.referenced.items()):
        target = _referenced_stack(repo, stack, kind)
        if target is None or not repo.has_stack(target):
            continue
        exports = program_reads(repo.root / "__main__.py")[kind].exported_config
        keys = {exports[name]: name for name in outputs if name in exports}
        if not keys:
            continue
        config = repo.stack_config(target)
        display = f"stacks/{repo.stack_file(target).name}"
        for key, output in sorted(keys.items()):
            if key not in config.values:
                continue
            reader = f"{stack} reads it as {target}'s output {output!r}"
            yield from _value_findings(
                display, key, config.values[key], key not in config.file_values, key in config.secret_keys, reader
            )


def _referenced_stack(repo: Repo, stack: StackName, kind: str) -> StackName | None:
    if kind == StackKind.GLOBAL.value:
        return GLOBAL
    if kind == StackKind.REGION.value and stack.kind is StackKind.PARTNER:
        return region_stack(repo.spec(stack.subject).home_region)
    return None


def _partner_spec(repo: Repo, partner_id: str) -> Iterator[Problem]:
    display = f"partners/{partner_id}.yaml"
    spec = repo.spec(partner_id)
    for path, text in _strings(spec.model_dump(mode="json", exclude_none=True), ""):
        for host in reserved_hosts(text):
            yield Problem(display, path, f"{text!r} names {host}, a reserved example domain that cannot be deployed")


def _data_file(repo: Repo, name: str) -> Iterator[Problem]:
    for path, text in _strings(repo.document(name), ""):
        for host in reserved_hosts(text):
            yield Problem(name, path, f"{text!r} names {host}, a reserved example domain that cannot be deployed")


def check(repo: Repo, stack_name: str, environ: Mapping[str, str] | None = None) -> list[Problem]:
    """Parse the stack name (bad or unknown: InputError) and check it."""
    return check_stack(repo, parse_stack_name(stack_name), environ)


def summary(findings: Iterable[Problem]) -> str:
    count = len(list(findings))
    return f"{count} value(s) still at a placeholder: not ready for a real deploy"
