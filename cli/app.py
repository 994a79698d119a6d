"""`platformctl`: commands parse arguments, call the library and print. Exit codes: 0 ok, 1 failure, 2 bad input,
130 interrupted."""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.context import CtrlC, checkpoint, confirm, err, listing, mode_of, open_repo, out, state
from cli.domains import verify_domain as verify_domain_command
from cli.groups import command_group, keep_examples_as_written
from cli.preflight import preflight as preflight_command
from cli.telephony import numbers as numbers_command
from foundation.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    InputError,
    PlatformError,
    PolicyError,
)

app = command_group(
    "platformctl",
    "Describe, review and change the voice platform's infrastructure.\n\nExample: platformctl plan --all",
)


@app.callback()
def main_options(
    root: Annotated[
        Path | None,
        typer.Option(
            "--root", help="The platform repository (default: $PLATFORMCTL_ROOT, else the nearest Pulumi.yaml upwards)."
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Describe, review and change the voice platform's infrastructure.

    Example: platformctl plan --all
    """
    state.root = root
    state.debug = debug


# ---------------------------------------------------------------- plan

ShowSameFlag = Annotated[
    bool, typer.Option("--show-same", help="Also list the resources that stay unchanged (like pulumi's --show-sames).")
]


@app.command()
def plan(
    stacks: Annotated[
        list[str] | None, typer.Argument(help="Stacks to plan: global, region-<code>, partner-<id>.")
    ] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Every stack that has a file in stacks/.")] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the plan as JSON (pulumi preview --json shape).")
    ] = None,
    against: Annotated[
        Path | None, typer.Option("--against", help="An earlier plan JSON: ops become create/update/delete/same.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, max=64, help="Worker processes (default: one per core).")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Plan every stack again instead of reusing unchanged results.")
    ] = False,
    shard: Annotated[
        str | None, typer.Option("--shard", metavar="K/N", help="Plan part K of N of the stacks (join: merge-plans).")
    ] = None,
    show_same: ShowSameFlag = False,
) -> None:
    """Plan stacks offline: the real program under the Pulumi SDK's mocks; no CLI, credentials or network.

    Example: platformctl plan partner-acme-voice --json plan.json
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cli import render
    from foundation.yamlio import check_output_file, write_output
    from platformctl.planning import run_plan, select_stacks
    from platformctl.shards import select_shard

    repo = open_repo()
    if json_file is not None:
        check_output_file(json_file, "--json")
    selected = select_stacks(repo, stacks or [], all_stacks)
    shard_block: dict[str, Any] | None = None
    if shard is not None:
        selected, shard_block = select_shard(repo, selected, shard, against)
    with Progress(
        TextColumn("planning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # a bar is for a person watching; a log would only get a stray newline
    ) as bar:
        task = bar.add_task("plan", total=None)

        def advance(_: str) -> None:
            checkpoint()
            bar.advance(task)

        result = run_plan(
            repo,
            selected,
            workers=workers,
            against=against,
            include_removed=all_stacks,
            progress=advance,
            use_cache=not no_cache,
            prune=all_stacks,
        )
    checkpoint()  # an interrupt swallowed after the last stack: nothing printed or written
    render.plan(out, result, show_same=show_same)
    render.violations(err, result)
    if json_file is not None:
        extra = {"shard": shard_block} if shard_block is not None else {}
        write_output(json_file, [*result.json_pieces(extra), "\n"], "--json")
    if result.mandatory:
        raise PolicyError(f"{len(result.mandatory)} mandatory policy violation(s)")


# ---------------------------------------------------------------- specs


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Spec files to check (default: the catalogs, every spec and stack file)."),
    ] = None,
    for_deploy: Annotated[
        str | None,
        typer.Option(
            "--for-deploy", metavar="STACK", help="Also list every config value STACK still has at a placeholder."
        ),
    ] = None,
) -> None:
    """Validate the catalogs, the tier table, partner specs and stack files (types and meaning) without planning.

    Example: platformctl validate partners/examples/pampas-voz.yaml
    Example: platformctl validate --for-deploy region-eu-central
    """
    from cli import render
    from platformctl import deploy_readiness, listings

    repo = open_repo()
    for warning in listings.validate(repo, list(paths or []), datetime.date.today()):
        render.plain(err, f"warning: {warning}", "yellow")
    if for_deploy is not None:
        findings = deploy_readiness.check(repo.root, for_deploy)
        for finding in findings:
            render.plain(out, str(finding))
        if findings:
            raise PlatformError(deploy_readiness.summary(findings))
        out.print(f"{for_deploy}: ready for a real deploy (no placeholder values)")
        return
    out.print("valid")


def _carry_out(locks: list[str], decide: Any, mode: Any, yes: bool, show_same: bool = False) -> None:
    """Hand the change to the library with this terminal's ways to talk, then print what happened."""
    from cli import render
    from platformctl import changes

    repo = open_repo()
    hooks = changes.Hooks(
        say=lambda line: render.plain(out, line),
        warn=lambda line: render.plain(err, f"warning: {line}", "yellow"),
        confirm=lambda what: confirm(yes, what),
        engine_output=lambda line: out.print(line, end="", markup=False),
    )
    outcome = changes.carry_out(repo.root, locks, decide, mode, hooks)
    if outcome.plan is not None:
        render.plan(out, outcome.plan, warnings=False, show_same=show_same)
        render.violations(err, outcome.plan)
    suffix = " (dry run: nothing written)" if mode is changes.Mode.DRY_RUN else ""
    for note in outcome.change.notes:
        render.plain(out, f"{note}{suffix}")
    if outcome.plan is not None and outcome.plan.mandatory:
        raise PolicyError(f"{len(outcome.plan.mandatory)} mandatory policy violation(s)")


@app.command("onboard-partner")
def onboard_partner(
    specs: Annotated[list[Path], typer.Argument(help="Partner spec files (YAML).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write nothing; print the new stack's offline plan.")
    ] = False,
    no_apply: Annotated[
        bool, typer.Option("--no-apply", help="Write partners/<id>.yaml and its stack file, then stop.")
    ] = False,
    update: Annotated[bool, typer.Option("--update", help="Allow changing a partner that exists.")] = False,
    reactivate: Annotated[
        bool, typer.Option("--reactivate", help="With --update: bring back an offboarded partner.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Apply without asking.")] = False,
    show_same: ShowSameFlag = False,
) -> None:
    """Validate partner specs against the model and the catalog, write them with their stacks, then apply.

    Example: platformctl onboard-partner partners/examples/pampas-voz.yaml --dry-run
    """
    from platformctl import changes

    mode = mode_of(dry_run, no_apply)
    inputs = changes.read_spec_inputs(specs)
    locks = changes.onboarding_locks(inputs)
    _carry_out(locks, lambda repo: changes.onboarding_change(repo, inputs, update, reactivate), mode, yes, show_same)
    if mode is changes.Mode.APPLY:
        from cli.render import plain
        from platformctl.billing import connect_after_onboarding

        for note in connect_after_onboarding(open_repo(), [lock.removeprefix("partner-") for lock in locks]):
            plain(out, note)


@app.command("offboard-partner")
def offboard_partner(
    partner_id: Annotated[str, typer.Argument(metavar="ID", help="The partner's id.")],
    purge: Annotated[
        bool, typer.Option("--purge", help="Let the data go too (only once its retention has run out).")
    ] = False,
    release_numbers: Annotated[
        bool, typer.Option("--release-numbers", help="Release its Twilio numbers and close its subaccount too.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write nothing; print the offline plan.")] = False,
    no_apply: Annotated[bool, typer.Option("--no-apply", help="Write the stack file, then stop.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Apply without asking.")] = False,
    show_same: ShowSameFlag = False,
) -> None:
    """Offboard a partner: its tenant goes, its data (buckets, keys, schema) stays until retention runs out.

    Example: platformctl offboard-partner acme-voice --no-apply
    """
    from platformctl import changes

    mode = mode_of(dry_run, no_apply)
    stack = changes.partner_argument(partner_id)
    today = datetime.date.today()
    _carry_out(
        [str(stack)],
        lambda repo: changes.offboarding_change(repo, partner_id, purge, today, release_numbers),
        mode,
        yes,
        show_same,
    )


@app.command("launch-country")
def launch_country(
    country: Annotated[str, typer.Argument(metavar="CC", help="ISO 3166-1 alpha-2 code.")],
    region: Annotated[
        str | None, typer.Option("--region", help="Region to launch in (needed where several serve the country).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write nothing; print the region's offline plan.")] = False,
    no_apply: Annotated[bool, typer.Option("--no-apply", help="Write the region's stack file, then stop.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Apply without asking.")] = False,
    show_same: ShowSameFlag = False,
) -> None:
    """Launch a country in its region: telephony, payment, language and compliance settings follow.

    Example: platformctl launch-country AR --region sa-east --dry-run
    """
    from foundation.stacks import region_stack
    from platformctl import changes

    mode = mode_of(dry_run, no_apply)
    code, chosen = changes.launch_region(open_repo(), country, region)
    _carry_out(
        [str(region_stack(chosen))],
        lambda repo: changes.country_launch_change(repo, code, chosen),
        mode,
        yes,
        show_same,
    )


# ---------------------------------------------------------------- CI


@app.command("ci-preview")
def ci_preview(
    base: Annotated[str, typer.Option("--base", help="Git ref the change is measured from (e.g. origin/main).")],
    head: Annotated[str, typer.Option("--head", help="Git ref of the change.")] = "HEAD",
    markdown_file: Annotated[
        Path | None, typer.Option("--markdown", help="Write the pull-request comment here.")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write stacks, steps and violations as JSON.")
    ] = None,
    shard: Annotated[
        str | None, typer.Option("--shard", metavar="K/N", help="Preview part K of N of the affected stacks.")
    ] = None,
    list_affected: Annotated[
        bool, typer.Option("--list-affected", help="Only print the affected stacks as JSON; plan nothing.")
    ] = False,
) -> None:
    """Plan every stack a change affects at base and at head, diff them and check the policies.

    Example: platformctl ci-preview --base origin/main --markdown preview.md --json preview.json
    """
    from cli import render
    from foundation.yamlio import check_output_file, write_output
    from platformctl import ci
    from platformctl.ci import affected_summary
    from platformctl.shards import parse_shard

    repo = open_repo()
    if list_affected:
        out.print(json.dumps(affected_summary(repo.root, base, head, shard, markdown_file, json_file)), markup=False)
        return
    for path, option in ((markdown_file, "--markdown"), (json_file, "--json")):
        if path is not None:
            check_output_file(path, option)
    preview = ci.ci_preview(repo.root, base, head, parse_shard(shard) if shard is not None else None)
    for note in preview.notes:
        render.plain(err, f"note: {note}", "yellow")
    text = ci.markdown(preview)
    if markdown_file is not None:
        write_output(markdown_file, text, "--markdown")
    if json_file is not None:
        write_output(json_file, json.dumps(preview.document(), indent=1) + "\n", "--json")
    if not preview.affected:
        out.print("This change touches nothing plannable: no stack is affected.")
        return
    for stack, result in preview.stacks.items():
        counts = result.get("changeSummary", {})
        render.plain(out, f"{stack}: " + (", ".join(f"{op} {n}" for op, n in counts.items()) or "no resources"))
    for violation in preview.violations:
        style = "red" if violation["level"] == "mandatory" else "yellow"
        render.plain(
            err,
            f"{violation['level']} policy {violation['policy']}: {violation['stack']}: {violation['message']}",
            style,
        )
    if preview.mandatory:
        raise PolicyError(f"{len(preview.mandatory)} mandatory policy violation(s)")


# ---------------------------------------------------------------- listings


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command()
def partners(as_json: JsonFlag = False) -> None:
    """List partners.

    Example: platformctl partners --json
    """
    from platformctl import listings

    listing(listings.partners(open_repo()), as_json, "Partners")


@app.command()
def regions(as_json: JsonFlag = False) -> None:
    """List regions with their launched countries.

    Example: platformctl regions
    """
    from platformctl import listings

    listing(listings.regions(open_repo()), as_json, "Regions")


@app.command()
def countries(as_json: JsonFlag = False) -> None:
    """List the catalog's countries and compliance profiles.

    Example: platformctl countries
    """
    from platformctl import listings

    listing(listings.countries(open_repo()), as_json, "Countries")


@app.command("stacks")
def list_stacks(as_json: JsonFlag = False) -> None:
    """List the stacks that have a file in stacks/.

    Example: platformctl stacks
    """
    from platformctl import listings

    listing(listings.stacks(open_repo()), as_json, "Stacks")


app.command("numbers")(numbers_command)
app.command("verify-domain")(verify_domain_command)

# ---------------------------------------------------------------- real engine


def _engine_command(operation: str, stack_name: str, yes: bool) -> None:
    from platformctl import engine
    from platformctl.planning import select_stacks

    repo = open_repo()
    (stack,) = select_stacks(repo, [stack_name], False)
    if operation in ("up", "destroy") and not confirm(yes, f"{operation} {stack}"):
        raise typer.Abort()
    summary = engine.run_locked(repo, stack, operation, on_output=lambda line: out.print(line, end="", markup=False))  # type: ignore[arg-type]
    out.print(f"{operation} {stack}: " + (", ".join(f"{k} {v}" for k, v in summary.items()) or "no changes"))


StackArg = Annotated[str, typer.Argument(metavar="STACK", help="global, region-<code> or partner-<id>.")]
YesFlag = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")]


@app.command()
def preview(stack: StackArg, yes: YesFlag = False) -> None:
    """`pulumi preview` of one stack through the Automation API.

    Example: platformctl preview global
    """
    _engine_command("preview", stack, yes)


@app.command()
def up(
    stack: StackArg,
    yes: YesFlag = False,
    dry_run_order: Annotated[
        bool,
        typer.Option(
            "--dry-run-order",
            help="Run nothing: print the order a first `up` creates the stack's resources in, from the offline "
            "plan's dependency graph, with each step's wait, the critical path and the expected duration.",
        ),
    ] = False,
) -> None:
    """`pulumi up` of one stack.

    Example: platformctl up region-eu-central --yes
    Example: platformctl up region-eu-central --dry-run-order
    """
    if dry_run_order:
        from cli.first_deploy import first_deploy_order
        from platformctl.first_deploy import first_deploy

        schedule, findings = first_deploy(open_repo(), stack)
        first_deploy_order(out, schedule, findings)
        if findings:
            raise PolicyError(f"{len(findings)} deploy-order finding(s): the first `up` of {stack} would stall")
        return
    _engine_command("up", stack, yes)


@app.command()
def destroy(stack: StackArg, yes: YesFlag = False) -> None:
    """`pulumi destroy` of one stack.

    Example: platformctl destroy partner-acme-voice --yes
    """
    _engine_command("destroy", stack, yes)


@app.command()
def refresh(stack: StackArg, yes: YesFlag = False) -> None:
    """`pulumi refresh` of one stack.

    Example: platformctl refresh global
    """
    _engine_command("refresh", stack, yes)


app.command("preflight")(preflight_command)

from cli.meter import register as register_meter  # noqa: E402  (the group needs `app`)

register_meter(app)
from cli.payouts import register as register_payouts  # noqa: E402

register_payouts(app)
from cli.webhooks import register as register_webhooks  # noqa: E402

register_webhooks(app)
from cli.shards import register as register_shards  # noqa: E402

register_shards(app)
from cli.integrations import register as register_integrations  # noqa: E402

register_integrations(app)
from cli.warehouse import register as register_warehouse  # noqa: E402

register_warehouse(app)
from cli.certs import register as register_certs  # noqa: E402

register_certs(app)


# ---------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error ends here and becomes an exit code."""
    with CtrlC.watched():
        code = _run(list(sys.argv[1:] if argv is None else argv))
        if CtrlC.seen:  # also when the interrupt was swallowed on the way and the command ran on
            code = EXIT_INTERRUPTED
        if code == EXIT_INTERRUPTED:
            _interrupted()
        return code


def _run(args: list[str]) -> int:
    debug = "--debug" in args
    command = keep_examples_as_written(typer.main.get_command(app))
    try:
        # Not standalone, Typer turns Ctrl-C (KeyboardInterrupt) into Exit(130) and *returns* an Exit's code rather
        # than raising it; a command's own return value is None. Either way a number here is the exit code.
        returned = command.main(args=args, prog_name="platformctl", standalone_mode=False)
        return returned if type(returned) is int else EXIT_OK
    except InputError as exc:
        _report(exc, [str(p) for p in exc.problems] or [str(exc)], debug)
        return EXIT_BAD_INPUT
    except PlatformError as exc:
        _report(exc, [str(exc)], debug)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        if CtrlC.seen:  # Ctrl-C at a confirmation prompt, which Click turns into Abort
            return EXIT_INTERRUPTED
        err.print("aborted")
        return EXIT_FAILURE
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument, bad value
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err.print(f"error: {exc}", markup=False)
        return int(getattr(exc, "exit_code", EXIT_BAD_INPUT))
    except KeyboardInterrupt:  # outside Typer's own handling (while Typer itself starts up, say)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        _report(exc, [f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"], debug)
        return EXIT_FAILURE


def _interrupted() -> None:
    """The one line an interrupted command leaves (files it writes are replaced whole or not at all)."""
    err.print("interrupted: stopped before finishing", markup=False, highlight=False)


def _report(exc: BaseException, lines: list[str], debug: bool) -> None:
    from cli import render

    if CtrlC.seen and not debug:
        return  # a failure the interrupt caused (an import cut short, say): the one line is "interrupted"

    if debug:
        err.print("".join(traceback.format_exception(exc)), markup=False)
    for line in lines:
        render.plain(err, f"error: {line}", "red")


def entry() -> None:
    code = main()
    if code == EXIT_INTERRUPTED:
        # Leave without the interpreter's own shutdown, which after an interrupted plan waits on threads the SDK left
        # behind (it can hang) and collects what the interrupt cut short, logging every abandoned asyncio task and
        # closed coroutine with tracebacks after the one line already said. The exit handlers still run: they
        # release what `multiprocessing` holds (a stopped meter's semaphores). Files are replaced whole or not at
        # all, and the planning workers are already stopped: nothing else is owed.
        logging.getLogger("asyncio").disabled = True
        sys.unraisablehook = lambda info: None
        warnings.simplefilter("ignore")
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
