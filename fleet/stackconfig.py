"""Pulumi.yaml config declarations and the per-stack config files in `stacks/`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from foundation.errors import InputError, Problem
from foundation.stacks import PROJECT, StackName
from foundation.yamlio import load_yaml_file

_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "boolean": (bool,), "integer": (int,), "array": (list,)}
SECRET_PLACEHOLDER = "[secret]"


@dataclass(frozen=True)
class ConfigDeclaration:
    key: str
    """Fully qualified key, e.g. platform:launchedCountries."""
    type: str
    """string, boolean, integer or array."""
    default: Any
    """Value when a stack sets none."""
    secret: bool
    """The value is a secret."""


@dataclass(frozen=True)
class StackConfig:
    values: dict[str, Any]
    """Every config value the program sees (declared defaults overlaid by the stack file)."""
    secret_keys: list[str]
    """Keys whose values are secret."""
    file_values: dict[str, Any]
    """What the stack file itself sets."""


@cache
def declarations(root: Path) -> dict[str, ConfigDeclaration]:
    project_file = root / "Pulumi.yaml"
    doc = load_yaml_file(project_file, "Pulumi.yaml")
    if not isinstance(doc, dict) or doc.get("name") != PROJECT:
        raise InputError.single("Pulumi.yaml", "name", f"expected the {PROJECT!r} project")
    result = {}
    for key, decl in (doc.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        result[full] = ConfigDeclaration(
            full, decl.get("type", "string"), decl.get("default"), bool(decl.get("secret"))
        )
    return result


def load_stack_config(root: Path, stack: StackName) -> StackConfig:
    path = stack.config_file(root)
    display = f"stacks/{path.name}"
    if path.is_symlink():
        raise InputError.single(display, "", "a stack file must be a regular file, not a symbolic link")
    if not path.is_file():
        raise InputError.single(display, "", f"no stack file for {stack}")
    doc = load_yaml_file(path, display)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict) or set(doc) - {"config", "secretsprovider", "encryptedkey", "encryptionsalt"}:
        raise InputError.single(display, "", "a stack file holds a `config:` mapping (and secrets-provider settings)")
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise InputError.single(display, "config", "must be a mapping")
    decls = declarations(root)
    problems: list[Problem] = []
    values: dict[str, Any] = {key: d.default for key, d in decls.items() if d.default is not None}
    secret_keys = [key for key, d in decls.items() if d.secret]
    file_values: dict[str, Any] = {}
    for key, value in raw.items():
        field = f"config.{key}"
        if not isinstance(key, str) or ":" not in key:
            problems.append(Problem(display, field, "config keys are namespaced, e.g. platform:launchedCountries"))
            continue
        if isinstance(value, dict) and set(value) == {"secure"}:
            if not isinstance(value["secure"], str) or not value["secure"]:
                problems.append(
                    Problem(display, f"{field}.secure", "must be the ciphertext string `pulumi config` wrote")
                )
                continue
            values[key] = SECRET_PLACEHOLDER
            secret_keys.append(key)
            file_values[key] = SECRET_PLACEHOLDER
            continue
        namespace = key.split(":", 1)[0]
        if namespace == PROJECT:
            decl = decls.get(key)
            if decl is None:
                problems.append(Problem(display, field, "unknown config key (not declared in Pulumi.yaml)"))
                continue
            if not isinstance(value, _TYPES.get(decl.type, (object,))) or (
                decl.type == "integer" and isinstance(value, bool)
            ):
                problems.append(Problem(display, field, f"must be of type {decl.type}"))
                continue
        values[key] = value
        file_values[key] = value
    if problems:
        raise InputError(problems)
    return StackConfig(values=values, secret_keys=sorted(set(secret_keys)), file_values=file_values)
