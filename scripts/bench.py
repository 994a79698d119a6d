"""Fleet benchmark: `platformctl plan --all` on global + 15 regions + N generated partners.

Measures, in one run on this machine (wall time; peak memory as PSS summed over the process tree):
  - cold (empty cache), warm with nothing changed, warm after one partner spec changed, and whether the warm
    plans' JSON is byte-identical to a cold plan of the same files;
  - scaling: the cold plan with one worker, with N workers, and as N shards (`--shard K/N`, each alone with one
    worker and no cache, as N CI runners would run them) merged by `merge-plans` (checked byte-identical);
  - the bare SDK floor: the same resources (types, names, parents, providers, inputs, in the same order)
    registered through the SDK's mocks by a minimal replay with the provider SDKs' own resource classes,
    in the same number of worker processes (and, for reference, with generic pulumi.CustomResource);
  - memory growth: the cold plan's peak against a fleet of half the size;
  - `platformctl --help` and `onboard-partner SPEC --dry-run` wall times.

    ./dev bench                      # 500 partners, one worker per core, N = 2
    ./dev bench --partners 100 --workers 2 --skip-memory-scaling
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import cast

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _tree_memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of `pid` and all its descendants, from /proc. PSS splits pages that forked workers share."""
    pss = rss = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
            with open(f"/proc/{current}/task/{current}/children") as children:
                pending.extend(int(c) for c in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pss, rss


def measure(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[float, tuple[int, int], subprocess.CompletedProcess[str]]:
    """Run `command`; return wall seconds, peak tree (PSS, RSS) in KiB and the completed process."""
    peak = (0, 0)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            pss, rss = _tree_memory_kib(process.pid)
            peak = (max(peak[0], pss), max(peak[1], rss))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    return elapsed, peak, subprocess.CompletedProcess(command, process.returncode, out, err)


# ---------------------------------------------------------------- the bare SDK floor


def _provider_class_table() -> dict[str, tuple[str, str]]:
    """Type token → (module, class name), read from each provider package's own registration table."""
    import importlib.util
    import re

    from platformctl.offline.planner import PROVIDER_MODULES

    table: dict[str, tuple[str, str]] = {}
    for package in PROVIDER_MODULES:
        spec = importlib.util.find_spec(package)
        source = Path(spec.origin or "").read_text() if spec else ""
        for kind in ("resource_modules", "resource_packages"):
            match = re.search(kind + r'="""(.*?)"""', source, re.S)
            for entry in json.loads(match.group(1)) if match else []:
                if kind == "resource_packages":
                    table[entry["token"]] = (entry["fqn"], entry["class"])
                else:
                    table.update({token: (entry["fqn"], name) for token, name in entry["classes"].items()})
    return table


def _typed_class(type_: str) -> type | None:
    import importlib

    if type_ not in _TYPED:
        location = _TABLE.get(type_)
        _TYPED[type_] = getattr(importlib.import_module(location[0]), location[1]) if location else None
    return _TYPED[type_]


def _snake(name: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_TABLE: dict[str, tuple[str, str]] = {}
_TYPED: dict[str, type | None] = {}


def _replay_stack(job: tuple[str, list[dict], bool]) -> int:
    """Register one planned stack's resources through the SDK's mocks: the provider SDK classes or generic ones."""
    import asyncio

    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    stack, steps, typed = job

    class Echo(pulumi.runtime.Mocks):
        def new_resource(self, args):
            return "", dict(args.inputs)

        def call(self, args):
            return {}

    settings.reset_options()
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(Echo(), project="platform", stack=stack, preview=True)

    def program() -> None:
        objects: dict[str, pulumi.Resource] = {}
        for step in steps:
            state = step["newState"]
            type_, name = state["type"], step["urn"].rsplit("::", 1)[1]
            if type_ == "pulumi:pulumi:Stack":
                continue
            provider = cast("pulumi.ProviderResource | None", objects.get(state.get("provider", "").rsplit("::", 1)[0]))
            opts = pulumi.ResourceOptions(parent=objects.get(state.get("parent", "")), provider=provider)
            cls = _typed_class(type_) if typed else None
            if cls is not None:
                kwargs = {_snake(key): value for key, value in state["inputs"].items()}
                resource: pulumi.Resource = cls(name, opts=opts, **kwargs)
            elif type_.startswith("pulumi:providers:"):
                resource = pulumi.ProviderResource(type_.split(":")[-1], name, state["inputs"], opts)
            elif state.get("custom"):
                resource = pulumi.CustomResource(type_, name, state["inputs"], opts)
            else:
                resource = pulumi.ComponentResource(type_, name, None, opts)
            objects[step["urn"]] = resource

    _sync_await(run_pulumi_func(program))
    settings.reset_options()
    return len(steps)


def floor(plan_file: Path, workers: int, typed: bool) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import pulumi  # noqa: F401 - imported once, before the workers fork

    if typed:
        _TABLE.update(_provider_class_table())
        for type_ in {
            s["newState"]["type"] for st in json.loads(plan_file.read_text())["stacks"].values() for s in st["steps"]
        }:
            _typed_class(type_)  # import before the workers fork, as platformctl's workers do
    stacks = json.loads(plan_file.read_text())["stacks"]
    jobs = [(name, stack["steps"], typed) for name, stack in stacks.items()]
    # The imports out of the collector's sight, as platformctl's planning processes have them
    # (platformctl/offline/planner.py, _settle_heap): the floor measures registration, not full collections.
    import gc

    gc.collect()
    gc.freeze()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        registered = sum(pool.map(_replay_stack, jobs, chunksize=max(1, len(jobs) // (workers * 4))))
    print(registered)


# ---------------------------------------------------------------- the benchmark


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> tuple[float, tuple[int, int]]:
    seconds, peak, done = measure(command, env)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return seconds, peak


def _same(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def _fleet(tmp: Path, partners: int, name: str) -> Path:
    from scripts.fleet import copy_repo, generate_partners

    root = copy_repo(REPO, tmp / name)
    generate_partners(root, partners)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partners", type=int, default=500)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--shards", type=int, default=2, help="N for the sharded runs and the worker scaling")
    parser.add_argument("--skip-memory-scaling", action="store_true", help="skip the half-size fleet's cold plan")
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--typed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        floor(args.floor, args.workers, args.typed)
        return 0

    bin_dir = Path(sys.executable).parent
    platformctl = [str(bin_dir / "platformctl")]
    n = args.shards
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="platformctl-bench-") as tmp_name:
        tmp = Path(tmp_name)
        root = _fleet(tmp, args.partners, "fleet")
        stacks = len(list((root / "stacks").glob("Pulumi.*.yaml")))
        plan = [*platformctl, "--root", str(root), "plan", "--all"]
        out = {name: tmp / f"{name}.json" for name in ("cold", "unchanged", "changed", "changed-cold", "merged")}

        help_times = [measure([*platformctl, "--help"])[0] for _ in range(5)]
        dry_time, _ = _run(
            [
                *platformctl,
                "--root",
                str(REPO),
                "onboard-partner",
                str(REPO / "partners" / "examples" / "pampas-voz.yaml"),
                "--dry-run",
            ],
            "onboard-partner --dry-run",
        )
        # 1. cold: an empty cache, one worker per core
        cold_time, cold_peak = _run([*plan, "--json", str(out["cold"]), "--workers", str(args.workers)], "cold plan")
        resources = sum(len(s["steps"]) for s in json.loads(out["cold"].read_text())["stacks"].values())
        # 2. warm, nothing changed
        unchanged_time, unchanged_peak = _run([*plan, "--json", str(out["unchanged"])], "warm plan")
        # 3. warm after one partner spec changed (a worker forked at start imports the SDK meanwhile)
        spec = root / "partners" / "fleet-0007.yaml"
        spec.write_text(spec.read_text().replace("voice_greeting: ", "voice_greeting: Welcome. "))
        changed_time, changed_peak = _run([*plan, "--json", str(out["changed"])], "warm plan after one change")
        # 4. the same state planned cold by one worker (the scaling baseline, and the byte-identity check)
        one_time, _ = _run(
            [*plan, "--no-cache", "--workers", "1", "--json", str(out["changed-cold"])], "cold plan, one worker"
        )
        # 5. N shards, each alone with one worker and no cache (as N separate CI runners would run them)
        shard_times = {}
        shard_files = []
        for index in range(1, n + 1):
            shard_file = tmp / f"shard-{index}.json"
            shard_times[f"{index}/{n}"], _ = _run(
                [*plan, "--no-cache", "--workers", "1", "--shard", f"{index}/{n}", "--json", str(shard_file)],
                f"shard {index}/{n}",
            )
            shard_files.append(str(shard_file))
        _run([*platformctl, "merge-plans", *shard_files, "--json", str(out["merged"])], "merge-plans")
        # 6. N workers on one machine (cold)
        n_workers_time, _ = _run(
            [*plan, "--no-cache", "--workers", str(n), "--json", str(tmp / "n-workers.json")], f"cold plan, {n} workers"
        )
        # 7. the bare SDK floor on the same resources
        floor_command = [sys.executable, __file__, "--floor", str(out["cold"]), "--workers", str(args.workers)]
        floor_time, floor_peak = _run([*floor_command, "--typed"], "SDK floor")
        generic_time, _ = _run(floor_command, "generic floor")
        shutil.rmtree(root)
        # 8. memory growth: a fleet of half the size, cold
        if not args.skip_memory_scaling:
            half = _fleet(tmp, args.partners // 2, "half")
            _, half_peak = _run(
                [*platformctl, "--root", str(half), "plan", "--all", "--workers", str(args.workers)], "half-size plan"
            )
            report["half_fleet_cold_peak_pss_mib"] = round(half_peak[0] / 1024)
            report["memory_growth_half_to_full"] = round(cold_peak[0] / half_peak[0], 2)

        report = {
            "stacks": stacks,
            "resources": resources,
            "workers": args.workers,
            "cold_seconds": round(cold_time, 2),
            "cold_peak_pss_mib": round(cold_peak[0] / 1024),
            "cold_peak_rss_sum_mib": round(cold_peak[1] / 1024),
            "warm_unchanged_seconds": round(unchanged_time, 2),
            "warm_unchanged_peak_pss_mib": round(unchanged_peak[0] / 1024),
            "warm_one_change_seconds": round(changed_time, 2),
            "warm_one_change_peak_pss_mib": round(changed_peak[0] / 1024),
            "warm_unchanged_identical_to_cold": _same(out["unchanged"], out["cold"]),
            "warm_one_change_identical_to_cold": _same(out["changed"], out["changed-cold"]),
            "sdk_floor_seconds": round(floor_time, 2),
            "sdk_floor_peak_pss_mib": round(floor_peak[0] / 1024),
            "cold_vs_floor": round(cold_time / floor_time, 2),
            "generic_resource_floor_seconds": round(generic_time, 2),
            "one_worker_cold_seconds": round(one_time, 2),
            f"{n}_workers_cold_seconds": round(n_workers_time, 2),
            f"{n}_workers_efficiency": round(one_time / (n * n_workers_time), 2),
            "shard_seconds": {k: round(v, 2) for k, v in shard_times.items()},
            f"{n}_shards_efficiency": round(one_time / (n * max(shard_times.values())), 2),
            "merged_shards_identical_to_unsharded": _same(out["merged"], out["changed-cold"]),
            "help_seconds_best_of_5": round(min(help_times), 3),
            "onboard_dry_run_seconds": round(dry_time, 2),
            **report,
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
