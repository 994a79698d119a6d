"""`platformctl certs sync`: copy the gateway's cert-manager Secrets into Kong (run by each region's CronJob)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.groups import Commands, command_group

certs_app = command_group(
    "certs",
    "The gateway's TLS certificates (cert-manager Secrets served by Kong).\n\n"
    "Example: platformctl certs sync --region eu-central --kong-admin-url https://kong-admin.example:8444",
)


@certs_app.command("sync")
def sync(
    region: Annotated[str, typer.Option("--region", help="Region code of this cluster (keeps Kong ids apart).")],
    kong_admin_url: Annotated[
        str, typer.Option("--kong-admin-url", envvar="KONG_ADMIN_URL", help="Kong control plane Admin API URL.")
    ],
    kubernetes_url: Annotated[
        str | None,
        typer.Option(
            "--kubernetes-url", help="API server URL (default: the pod's own cluster, in-cluster credentials)."
        ),
    ] = None,
) -> None:
    """Serve every registered, issued certificate from Kong; exit 1 when any could not be synced.

    Needs KONG_ADMIN_TOKEN in the environment (and KUBERNETES_TOKEN with --kubernetes-url).
    Example: platformctl certs sync --region eu-central --kong-admin-url https://kong-admin.example:8444
    """
    import os

    from cli.context import out
    from cli.render import plain
    from foundation.errors import EngineError, InputError
    from services.certsync import Endpoint, checked_arguments, in_cluster_kubernetes
    from services.certsync import sync as run

    kong_admin_url, kubernetes_url = checked_arguments(region, kong_admin_url, kubernetes_url)
    token = os.environ.get("KONG_ADMIN_TOKEN", "")
    if not token:
        raise InputError.single("environment", "KONG_ADMIN_TOKEN", "is not set")
    if kubernetes_url:
        kube_token = os.environ.get("KUBERNETES_TOKEN", "")
        if not kube_token:
            raise InputError.single("environment", "KUBERNETES_TOKEN", "is not set (needed with --kubernetes-url)")
        kubernetes = Endpoint(kubernetes_url, {"Authorization": f"Bearer {kube_token}"})
    else:
        kubernetes = in_cluster_kubernetes()
    report = run(kubernetes, Endpoint(kong_admin_url, {"Kong-Admin-Token": token}), region)
    for label, items in (
        ("written", report.written),
        ("unchanged", report.unchanged),
        ("waiting for issuance", report.waiting),
        ("deleted", report.deleted),
    ):
        for item in items:
            plain(out, f"{label}: {item}")
    if report.failed:
        raise EngineError("; ".join(report.failed))


COMMANDS: Commands = {"certs": certs_app}
