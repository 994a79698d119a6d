"""The fixed costs of `plan --all` that are not the Pulumi SDK's, on a generated fleet, in one process.

Prints four timings (wall and CPU seconds) for global + regions + N generated partners:
  specs          `Repo(root).specs()`: every spec read, parsed, validated and checked against the catalog
  program_paths  `fleet.program.program_paths(root)`, cold (the plan cache key's program files)
  contexts       `context_for` of every stack (specs and stack files already read, as when planning)
  stack_configs  `load_stack_config` of every stack file

    .venv/bin/python scripts/bench_fixed_costs.py              # 500 partners in a temporary copy
    .venv/bin/python scripts/bench_fixed_costs.py --partners 100
    .venv/bin/python scripts/bench_fixed_costs.py --root FLEET  # an existing (generated) fleet, left as is

Not part of `./dev bench`: it is a quick check of the parts a warm plan cannot skip.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(run: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """(wall, CPU) seconds and the result: the CPU time is the steadier figure on a shared machine."""
    start, cpu = time.perf_counter(), time.process_time()
    result = run()
    return (time.perf_counter() - start, time.process_time() - cpu), result


def measure(root: Path) -> dict[str, tuple[float, float]]:
    # Imported first, with the modules the spec and context readers import lazily: a plan imports them anyway,
    # and their import is not a per-fleet cost.
    import partners.spec
    import partners.telephony  # noqa: F401
    import policies.rules  # noqa: F401
    from fleet.program import program_paths
    from fleet.repo import Repo
    from fleet.stackconfig import load_stack_config
    from policies.context import context_for

    figures: dict[str, tuple[float, float]] = {}
    # First, before anything in this process has read the tree's modules: a cold derivation.
    figures["program_paths"], paths = timed(lambda: program_paths(root))
    figures["specs"], specs = timed(lambda: Repo(root).specs())
    stacks = Repo(root).stack_names()
    figures["stack_configs"], _ = timed(lambda: [load_stack_config(root, stack) for stack in stacks])
    repo = Repo(root)
    repo.specs()
    configs = {stack: repo.stack_config(stack).values for stack in stacks}
    figures["contexts"], _ = timed(lambda: [context_for(repo, stack, configs[stack]) for stack in stacks])
    print(f"fleet: {len(specs)} specs, {len(stacks)} stack files, {len(paths)} program files", file=sys.stderr)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partners", type=int, default=500, help="generated partners (default 500)")
    parser.add_argument("--root", type=Path, help="an existing fleet to measure instead of generating one")
    args = parser.parse_args()
    if args.root is not None:
        figures = measure(args.root.resolve())
    else:
        from scripts.fleet import copy_repo, generate_partners

        with tempfile.TemporaryDirectory(prefix="fixed-costs-") as scratch:
            root = copy_repo(REPO, Path(scratch) / "fleet")
            generate_partners(root, args.partners)
            figures = measure(root)
    for name in ("specs", "program_paths", "contexts", "stack_configs"):
        wall, cpu = figures[name]
        print(f"{name:<14} {wall:.3f} s wall  {cpu:.3f} s cpu")


if __name__ == "__main__":
    main()
