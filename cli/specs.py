"""`platformctl validate`, `onboard-partner`, `offboard-partner`, `launch-country`: check specs, and change the
fleet through the one change path (locks, journal) with this terminal's ways to talk."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.context import confirm, err, mode_of, open_repo, out
from cli.groups import Commands
from cli.options import ShowSameFlag
from foundation.errors import PlatformError, PolicyError


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
        findings = deploy_readiness.check(repo, for_deploy)
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
    from platformctl import changes, partner_changes

    mode = mode_of(dry_run, no_apply)
    inputs = partner_changes.read_spec_inputs(specs)
    locks = partner_changes.onboarding_locks(inputs)
    _carry_out(
        locks, lambda repo: partner_changes.onboarding_change(repo, inputs, update, reactivate), mode, yes, show_same
    )
    if mode is changes.Mode.APPLY:
        from cli.render import plain
        from platformctl.billing import connect_after_onboarding

        for note in connect_after_onboarding(open_repo(), [lock.removeprefix("partner-") for lock in locks]):
            plain(out, note)


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
    from platformctl import partner_changes

    mode = mode_of(dry_run, no_apply)
    stack = partner_changes.partner_argument(partner_id)
    today = datetime.date.today()
    _carry_out(
        [str(stack)],
        lambda repo: partner_changes.offboarding_change(repo, partner_id, purge, today, release_numbers),
        mode,
        yes,
        show_same,
    )


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
    from platformctl import country_launches

    mode = mode_of(dry_run, no_apply)
    code, chosen = country_launches.launch_region(open_repo(), country, region)
    _carry_out(
        [str(region_stack(chosen))],
        lambda repo: country_launches.country_launch_change(repo, code, chosen),
        mode,
        yes,
        show_same,
    )


COMMANDS: Commands = {
    "validate": validate,
    "onboard-partner": onboard_partner,
    "offboard-partner": offboard_partner,
    "launch-country": launch_country,
}
