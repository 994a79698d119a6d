"""How `platformctl up STACK --dry-run-order` looks: the first update's steps by start time, the critical path."""

from __future__ import annotations

from rich.console import Console

from cli.render import plain
from platformctl.first_deploy import DEFAULT, Schedule, minutes


def first_deploy_order(console: Console, schedule: Schedule, findings: list[str]) -> None:
    plain(console, f"first `pulumi up` of {schedule.stack}: {len(schedule.steps)} resources, in this order")
    plain(console, "start   done    resource  (type)  [what the engine waits for]")
    for step in schedule.steps:
        wait = (
            f"  [{step.wait.what}, up to {minutes(step.wait.most)}]"
            if step.wait is not DEFAULT and step.wait.what
            else ""
        )
        plain(
            console,
            f"{minutes(step.start):>6}  {minutes(step.finish):>6}  {step.resource.name}  ({step.resource.type}){wait}",
        )
    plain(console, "")
    plain(console, "critical path (each step starts when the one before it is done):")
    for step in schedule.critical_path:
        plain(console, f"  {minutes(step.finish):>6}  {step.resource.name}  {step.wait.what or step.resource.type}")
    plain(
        console,
        f"expected duration {minutes(schedule.typical_seconds)} (min:s); "
        f"at most {minutes(schedule.worst_seconds)} if every wait runs to its timeout",
    )
    for finding in findings:
        plain(console, f"deploy-order: {finding}", "red")
