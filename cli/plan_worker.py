"""`platformctl plan-worker status|stop`: the resident planning worker of this repository."""

from __future__ import annotations

import typer

from cli.groups import command_group

plan_worker_app = command_group(
    "plan-worker",
    "The resident planning worker `plan` starts (keeps the SDK imported between plans; exits when idle).",
)


@plan_worker_app.command("status")
def status() -> None:
    """Whether this repository's resident planning worker runs, and what it has done.

    Example: platformctl plan-worker status
    """
    from cli.app import _repo, out
    from cli.render import plain
    from platformctl.offline.resident import ResidentWorker, enabled

    repo = _repo()
    worker = ResidentWorker.find(repo.root, even_if_off=True)
    if worker is None:
        plain(out, "no resident planning worker" + ("" if enabled() else " (turned off: PLATFORMCTL_RESIDENT_WORKER)"))
        return
    plain(
        out,
        f"resident planning worker: pid {worker.pid}, {worker.served} stack(s) planned, "
        f"{worker.loading} module(s) still to load, exits after {worker.idle_seconds:.0f} s idle"
        + ("" if enabled() else " (turned off here: PLATFORMCTL_RESIDENT_WORKER, so plans here do not use it)"),
    )


@plan_worker_app.command("stop")
def stop() -> None:
    """Stop this repository's resident planning worker (the next `plan` starts another).

    Example: platformctl plan-worker stop
    """
    from cli.app import _repo, out
    from cli.render import plain
    from platformctl.offline.resident import ResidentWorker

    worker = ResidentWorker.find(_repo().root, even_if_off=True)
    if worker is None:
        plain(out, "no resident planning worker")
        return
    worker.stop()
    plain(out, f"stopped the resident planning worker (pid {worker.pid})")


def register(app: typer.Typer) -> None:
    app.add_typer(plan_worker_app)
