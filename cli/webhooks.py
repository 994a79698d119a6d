"""`platformctl webhooks serve`: parse arguments, call the library (what `platform-services webhooks serve` runs)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.groups import Commands, command_group

webhooks_app = command_group(
    "webhooks",
    "The webhooks dispatcher (signed, retried deliveries of platform events to partner and integration endpoints).\n\n"
    "Example: platformctl webhooks serve --port 8788",
)


@webhooks_app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8788,
    store: Annotated[
        str, typer.Option("--store", envvar="WEBHOOKS_STORE", help="local:DIR: the durable store (DIR/webhooks.db).")
    ] = "local:.platformctl/webhooks",
    per_endpoint: Annotated[
        int, typer.Option("--per-endpoint", min=1, max=64, help="Attempts in flight per endpoint at most.")
    ] = 8,
) -> None:
    """Run the webhooks service. Needs WEBHOOKS_EVENT_TOKEN, WEBHOOKS_KONG_TOKEN and a key for endpoint secrets
    (WEBHOOKS_KMS_KEY_ID deployed, WEBHOOKS_SECRET_KEY locally) in the environment.

    Example: platformctl webhooks serve --port 8788 --store local:.platformctl/webhooks
    """
    from services.webhooks.server import ServeConfig
    from services.webhooks.server import serve as run

    run(ServeConfig(host=host, port=port, store=store, per_endpoint=per_endpoint))


COMMANDS: Commands = {"webhooks": webhooks_app}
