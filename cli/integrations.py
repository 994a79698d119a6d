"""`platformctl integration submit|approve|publish|suspend|retire|status`: parse arguments, call the library, print.

Exit codes: 0 done, 1 engine failure, 2 refused (each reason printed with the file and field).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.groups import Commands, command_group

integration_app = command_group(
    "integration",
    "Marketplace integrations: submit a spec for review, approve it, publish, suspend or retire it.\n\n"
    "Example: platformctl integration submit calsync.yaml --yes",
)

DEFAULT_WAREHOUSE = "local:.platformctl/warehouse"
JsonFlag = Annotated[bool, typer.Option("--json", help="Print a JSON report on stdout (progress goes to stderr).")]
YesFlag = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="The integration's id.")]


def _run(lock: str, decide: Any, mode: Any, yes: bool, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """Carry the change out under the integration's lock, then print what happened (or the JSON report)."""
    from cli import render
    from cli.context import confirm, err, open_repo, out
    from platformctl import changes

    stream = err if as_json else out
    repo = open_repo()
    hooks = changes.Hooks(
        say=lambda line: render.plain(stream, line),
        warn=lambda line: render.plain(err, f"warning: {line}", "yellow"),
        confirm=lambda what: confirm(yes, what),
        engine_output=lambda line: stream.print(line, end="", markup=False),
    )
    outcome = changes.carry_out(repo.root, [lock], decide, mode, hooks)
    if outcome.plan is not None and not as_json:
        render.plan(out, outcome.plan, warnings=False)
        render.violations(err, outcome.plan)
    dry = mode is changes.Mode.DRY_RUN
    if as_json:
        report = {
            "mode": mode.value,
            "notes": outcome.change.notes,
            "warnings": outcome.change.warnings,
            "files": [repo.display(p) for p in outcome.change.files],
            "written": not dry,
            **(extra or {}),
        }
        if outcome.plan is not None:
            report["plan"] = {"changeSummary": outcome.plan.document.get("changeSummary", {})}
            report["violations"] = [v for v in outcome.plan.document.get("violations", [])]
        out.print_json(json.dumps(report))
    else:
        for note in outcome.change.notes:
            render.plain(out, f"{note}{' (dry run: nothing written)' if dry else ''}")
    if outcome.plan is not None and outcome.plan.mandatory:
        from foundation.errors import PolicyError

        raise PolicyError(f"{len(outcome.plan.mandatory)} mandatory policy violation(s)")


def _mode(dry_run: bool, no_apply: bool) -> Any:
    from cli.context import mode_of

    return mode_of(dry_run, no_apply)


@integration_app.command("submit")
def submit(
    spec: Annotated[Path, typer.Argument(metavar="SPEC.yaml", help="The integration spec (YAML).")],
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Validate a spec, run the automated review, and write integrations/<id>.yaml with its review record.

    Refused (exit 2, each reason named): an image without a digest, limits missing or above the caps, an unknown
    scope or one broader than the category needs, a data class a region's countries forbid, plain-http or wildcard
    egress, no health path. The human security review is recorded as pending.

    Example: platformctl integration submit integrations/examples/calsync.yaml --yes --json
    """
    from platformctl import changes
    from platformctl import integrations as lifecycle

    item = lifecycle.read_input(spec)
    lock = lifecycle.lock_for(item)
    found: dict[str, Any] = {}

    def decide(repo: Any) -> Any:
        change, result = lifecycle.submit_change(repo, item, datetime.date.today())
        found.update(passed=result.passed, pending=result.pending)
        return change

    # Decide once up front so a refusal is reported before any question is asked.
    from cli.context import confirm, open_repo

    decide(open_repo())
    if not confirm(yes, f"write the reviewed spec of {lock.removeprefix('integration-')}"):
        raise typer.Abort()
    _run(lock, decide, changes.Mode.NO_APPLY, True, as_json, {"review": found})


@integration_app.command("approve")
def approve(
    integration_id: IdArg,
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who did the human security review.")],
    as_json: JsonFlag = False,
) -> None:
    """Record the human review for the spec's exact digest; any later change to the spec needs a new approval.

    Example: platformctl integration approve calsync --reviewer "Dana Reviewer" --json
    """
    from platformctl import changes
    from platformctl import integrations as lifecycle

    stack = lifecycle.argument(integration_id)
    today = datetime.date.today()
    _run(
        str(stack),
        lambda repo: lifecycle.approve_change(repo, integration_id, reviewer, today),
        changes.Mode.NO_APPLY,
        True,
        as_json,
    )


@integration_app.command("publish")
def publish(
    integration_id: IdArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write nothing; print the stack's offline plan.")] = False,
    no_apply: Annotated[
        bool, typer.Option("--no-apply", help="Write stacks/Pulumi.integration-<id>.yaml and the record, then stop.")
    ] = False,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Publish an approved spec (or resume a suspended one): its stack file, then preview + up.

    Refused (exit 2) when the spec's digest is not the approved one.

    Example: platformctl integration publish calsync --no-apply
    """
    from platformctl import integrations as lifecycle

    stack = lifecycle.argument(integration_id)
    mode = _mode(dry_run, no_apply)
    _run(str(stack), lambda repo: lifecycle.publish_change(repo, integration_id), mode, yes, as_json)


@integration_app.command("suspend")
def suspend(
    integration_id: IdArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write nothing; print the stack's offline plan.")] = False,
    no_apply: Annotated[bool, typer.Option("--no-apply", help="Write the record, then stop.")] = False,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Take an integration out of service at once: routes answer 503, sandboxes scale to zero, installs are kept.

    Example: platformctl integration suspend calsync --yes
    """
    from platformctl import integrations as lifecycle

    stack = lifecycle.argument(integration_id)
    mode = _mode(dry_run, no_apply)
    _run(str(stack), lambda repo: lifecycle.suspend_change(repo, integration_id), mode, yes, as_json)


@integration_app.command("retire")
def retire(
    integration_id: IdArg,
    no_apply: Annotated[bool, typer.Option("--no-apply", help="Write the record, then stop.")] = False,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Retire an integration no partner has installed: its stack is destroyed; spec and record stay as history.

    Example: platformctl integration retire calsync --yes
    """
    from platformctl import integrations as lifecycle

    stack = lifecycle.argument(integration_id)
    _run(str(stack), lambda repo: lifecycle.retire_change(repo, integration_id), _mode(False, no_apply), yes, as_json)


@integration_app.command("status")
def status(
    integration_id: Annotated[str | None, typer.Argument(metavar="ID", help="One integration (default: all).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show each integration's state, digest, approval and installations.

    Example: platformctl integration status calsync --json
    """
    from cli.context import listing, open_repo
    from platformctl import integrations as lifecycle

    listing(lifecycle.status(open_repo(), integration_id), as_json, "Integrations")


marketplace_app = command_group(
    "marketplace",
    "The integration marketplace listing.\n\nExample: platformctl marketplace build --out site",
)


@marketplace_app.command("build")
def build(
    out_dir: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder to write the site into.")],
    warehouse: Annotated[
        list[str] | None,
        typer.Option(
            "--warehouse",
            metavar="URL",
            help="A regional warehouse to read install counts and conformance results from: local:DIR (embedded "
            "fakesnow) or snowflake://ACCOUNT/DATABASE?user=&role=&warehouse=; repeat it for each region "
            "(default local:.platformctl/warehouse).",
        ),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option(
            "--results", metavar="DIR", help="Also show conformance results given as files (<id>.json, the job's JSON)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write the marketplace as a static site (index, a page per category and per integration) and marketplace.json.

    Install counts (partners with it installed now) and each region's latest conformance result come from the
    warehouses' INSTALLS and CONFORMANCE_RESULTS. A --results folder that is not there is refused (exit 2).

    Example: platformctl marketplace build --out site --warehouse local:.platformctl/warehouse --json
    """
    from cli.context import open_repo, out
    from platformctl import marketplace

    warehouses = warehouse or [DEFAULT_WAREHOUSE]
    report = marketplace.build(open_repo(), out_dir, warehouses, results)
    if as_json:
        out.print_json(json.dumps({**report, "warehouses": warehouses}))
    else:
        out.print(f"wrote {len(report['files'])} files to {out_dir} ({len(report['integrations'])} integrations)")


COMMANDS: Commands = {"integration": integration_app, "marketplace": marketplace_app}
