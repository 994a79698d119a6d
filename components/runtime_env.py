"""A runtime workload's environment: plain values, and secrets through a Secret it owns (never in the pod spec)."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

SERVICES_COMMAND = ("platform-services",)
"""The services distribution's console script (services/, `platform-services meter serve | payouts run`): set as the
container's command, so what runs does not depend on the image's ENTRYPOINT."""


def workload_env(
    name: str,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    env: Mapping[str, pulumi.Input[str]],
    secret_env: Mapping[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> list[k8s.core.v1.EnvVarArgs]:
    """`env` as values; `secret_env` in a Secret named by `metadata` (`{name}-secret`), referenced by key."""
    variables = [k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in env.items()]
    if not secret_env:
        return variables
    secret = k8s.core.v1.Secret(
        f"{name}-secret",
        metadata=metadata,
        type="Opaque",
        string_data={k: pulumi.Output.secret(v) for k, v in secret_env.items()},
        opts=opts,
    )
    return variables + [
        k8s.core.v1.EnvVarArgs(
            name=key,
            value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret.metadata.name, key=key)
            ),
        )
        for key in secret_env
    ]
