"""Plan stacks offline in dependency order, in a pool of worker processes when there are many."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import queue
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from fleet.repo import Repo, active, for_program
from fleet.stackconfig import StackConfig
from foundation.errors import InputError, PlatformError
from foundation.stacks import StackName

if TYPE_CHECKING:  # the recorder imports the Pulumi SDK: only a run that plans something pays for it
    from platformctl.offline.recorder import RecordedResource, ReferencedStack, StackRecording

PROVIDER_MODULES = ("pulumi_aws", "pulumi_kubernetes", "pulumi_kong", "pulumi_snowflake", "pulumi_random", "pulumi_tls")
"""The provider SDKs the program registers resources with (import names)."""
SEQUENTIAL_BELOW = 8
"""Fewer stacks than this are planned in-process: a pool's start-up would cost more than it saves."""

Progress = Callable[[str], None]
T = TypeVar("T")


@dataclass
class StackPlan:
    stack: str
    """Stack name."""
    recording: StackRecording
    """What the program registered."""
    config: dict[str, Any]
    """The stack config it was planned with (declared defaults overlaid by the stack file)."""
    root: Path | None = None
    """The repository it was planned from."""

    def preview(self) -> dict[str, Any]:
        """The stack's plan in the shape of `pulumi preview --json` (every step a create).

        Steps come parents first, siblings by URN: the same program and inputs give the same document whatever
        order the SDK's asynchronous registrations happened to complete in."""
        steps = [
            {"op": "read" if r.read_id else "create", "urn": r.urn, "newState": r.new_state()}
            for r in self.ordered_resources()
        ]
        creates = sum(1 for step in steps if step["op"] == "create")
        reads = len(steps) - creates
        return {
            "steps": steps,
            "changeSummary": {**({"create": creates} if creates else {}), **({"read": reads} if reads else {})},
            "outputs": self.recording.outputs,
            "diagnostics": [{"severity": "warning", "message": w} for w in self.recording.warnings],
        }

    def ordered_resources(self) -> list[RecordedResource]:
        resources = self.recording.resources
        children: dict[str, list[RecordedResource]] = {}
        for resource in resources:
            children.setdefault(resource.parent, []).append(resource)
        ordered: list[RecordedResource] = []
        pending = sorted(children.get("", []), key=lambda r: r.urn, reverse=True)
        while pending:
            resource = pending.pop()
            ordered.append(resource)
            pending.extend(sorted(children.get(resource.urn, []), key=lambda r: r.urn, reverse=True))
        placed = {r.urn for r in ordered}
        return ordered + sorted((r for r in resources if r.urn not in placed), key=lambda r: r.urn)


@dataclass(frozen=True)
class _Reference:
    """What a StackReference needs of an already planned stack (cheap to send to a worker)."""

    reference_outputs: dict[str, Any]
    secret_outputs: list[str] = field(default_factory=list)


def with_dependencies(repo: Repo, stacks: list[StackName]) -> tuple[list[StackName], dict[StackName, list[StackName]]]:
    """`stacks` plus everything they read, in planning order, and each one's dependencies; a stack read without a
    stack file is bad input."""
    deps: dict[StackName, list[StackName]] = {}
    pending = list(stacks)
    while pending:
        stack = pending.pop()
        if stack not in deps:
            deps[stack] = repo.dependencies(stack)
            pending.extend(deps[stack])
    ordered = sorted(deps, key=lambda s: (s.rank, s.subject))
    for stack in ordered:
        if not repo.has_stack(stack):
            raise InputError.single(
                f"stacks/Pulumi.{stack}.yaml", "", f"no stack file for {stack}, which {_readers(stack, deps)} read(s)"
            )
    return ordered, deps


def plan_stacks(
    repo: Repo,
    stacks: list[StackName],
    workers: int | None = None,
    progress: Progress | None = None,
    known: Mapping[str, ReferencedStack] | None = None,
    pool: PlanningPool[Any] | None = None,
) -> dict[str, StackPlan]:
    """Plan `stacks` and what they read; returns the planned stacks by name, in planning order.

    A stack in `known` (its outputs already known, e.g. from the result cache) is not planned again: the stacks
    that read it see those outputs. With `pool`, the stacks are planned in its (already started) workers."""
    return plan_and_finish(repo, stacks, _keep, workers, progress, known, pool)


def plan_and_finish(
    repo: Repo,
    stacks: list[StackName],
    finish: Callable[[StackPlan], T],
    workers: int | None = None,
    progress: Progress | None = None,
    known: Mapping[str, ReferencedStack] | None = None,
    pool: PlanningPool[Any] | None = None,
) -> dict[str, T]:
    """`plan_stacks`, returning `finish(plan)` for each stack: `finish` runs where the stack was planned (in a
    worker, in parallel), so the parent receives what it needs rather than every recorded resource. `finish` is
    a module-level function (it is sent to the workers by name)."""
    with active(repo):
        return _plan_stacks(repo, stacks, workers, progress, dict(known or {}), pool, finish)


def _plan_stacks(
    repo: Repo,
    stacks: list[StackName],
    workers: int | None,
    progress: Progress | None,
    known: dict[str, ReferencedStack],
    pool: PlanningPool[T] | None,
    finish: Callable[[StackPlan], T],
) -> dict[str, T]:
    root = repo.root
    ordered, deps = with_dependencies(repo, stacks)
    references: dict[str, _Reference] = {
        name: _Reference(ref.reference_outputs, list(ref.secret_outputs)) for name, ref in known.items()
    }
    ordered = [s for s in ordered if str(s) not in references]
    configs = {stack: repo.stack_config(stack) for stack in ordered}
    workers = workers or os.cpu_count() or 1
    results: dict[str, T] = {}

    def done(planned: Planned[T]) -> None:
        results[planned.stack] = planned.result
        references[planned.stack] = planned.reference
        if progress:
            progress(planned.stack)

    def job(stack: StackName) -> PlanJob[T]:
        return PlanJob(root, str(stack), configs[stack], {str(d): references[str(d)] for d in deps[stack]}, finish)

    if pool is None and (workers <= 1 or len(ordered) < SEQUENTIAL_BELOW):
        for stack in ordered:
            done(plan_job(job(stack)))
    else:
        owned = pool is None
        running = pool or WorkerPool(root, workers)
        try:
            for planned in running.schedule(ordered, deps, job):
                done(planned)
        finally:
            if owned:
                running.close()
    return {str(stack): results[str(stack)] for stack in ordered}  # planning order, whatever finished first


@dataclass(frozen=True)
class PlanJob(Generic[T]):
    """One stack to plan, as a worker receives it."""

    root: Path
    """The repository to plan it from."""
    stack: str
    """Stack name."""
    config: StackConfig
    """Its stack config."""
    references: dict[str, _Reference]
    """What it reads of the stacks it references, by stack name."""
    finish: Callable[[StackPlan], T]
    """Run where the stack was planned; its return value is what comes back."""


@dataclass(frozen=True)
class Planned(Generic[T]):
    """A planned stack, as a worker sends it back."""

    stack: str
    """Stack name."""
    reference: _Reference
    """What the stacks that read this one see (secret values included: it goes only between this user's planning
    processes, never to a file)."""
    result: T
    """The job's `finish(plan)`."""


class PlanningPool(Generic[T]):
    """Where stacks are sent to be planned: each stack as soon as the stacks it reads are planned."""

    def schedule(
        self, ordered: list[StackName], deps: dict[StackName, list[StackName]], job: Callable[[StackName], PlanJob[T]]
    ) -> Iterator[Planned[T]]:
        """Plan `ordered`, each stack as soon as the stacks it reads are planned (not a phase of every region
        before any partner: a worker would idle at each phase's tail). Results come as they finish; `job(stack)` is
        called when the stack is sent, after the caller has taken in the results of its dependencies."""
        planning = set(ordered)
        waiting = {stack: {d for d in deps[stack] if d in planning} for stack in ordered}
        readers: dict[StackName, list[StackName]] = {stack: [] for stack in ordered}
        for stack in ordered:
            for dependency in waiting[stack]:
                readers[dependency].append(stack)
        finished: queue.SimpleQueue[Planned[T] | BaseException] = queue.SimpleQueue()
        by_name = {str(stack): stack for stack in ordered}
        in_flight = 0

        def send(stack: StackName) -> None:
            nonlocal in_flight
            in_flight += 1
            self.submit(job(stack), finished.put)

        for stack in ordered:
            if not waiting[stack]:
                send(stack)
        while in_flight:
            outcome = finished.get()
            in_flight -= 1
            if isinstance(outcome, BaseException):
                raise outcome
            yield outcome
            for reader in readers[by_name[outcome.stack]]:
                waiting[reader].discard(by_name[outcome.stack])
                if not waiting[reader]:
                    send(reader)

    def submit(self, job: PlanJob[T], done: Callable[[Planned[T] | BaseException], None]) -> None:
        """Start planning `job`; `done` receives its result or the exception it raised (from any thread)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop planning (workers that turned out not to be needed, or after the last result)."""


class WorkerPool(PlanningPool[T]):
    """Forked planning processes, each importing the SDK and the program's modules once when it starts.

    Forked: a worker inherits the parent's imports, sys.path (the project's folder first, put there by
    cli/launch.py) and the active `Repo`, and starts in milliseconds; `root` is also passed explicitly, so a module
    the parent has not imported yet is found in the project being planned, not wherever else sys.path leads. Started
    early, its imports (seconds, mostly provider SDKs) run on another core while the parent still works out what
    needs planning; `close` stops workers that turned out not to be needed at once."""

    def __init__(self, root: Path, workers: int) -> None:
        # Ctrl-C reaches the whole process group; stopping the workers is the parent's job (it terminates the pool
        # on the way out), so a worker ignores SIGINT instead of printing a traceback. The signal is blocked while
        # forking: a worker never runs Python with the default handler, and a Ctrl-C meanwhile reaches the parent
        # once the pool is started, not lost.
        with _sigint_blocked():
            self._pool = multiprocessing.get_context("fork").Pool(workers, initializer=_warm_worker, initargs=(root,))

    def submit(self, job: PlanJob[T], done: Callable[[Planned[T] | BaseException], None]) -> None:
        self._pool.apply_async(plan_job, (job,), callback=done, error_callback=done)

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()


def _readers(stack: StackName, deps: dict[StackName, list[StackName]]) -> str:
    return ", ".join(str(s) for s, reads in deps.items() if stack in reads) or "nothing"


def plan_job(job: PlanJob[T]) -> Planned[T]:
    from platformctl.offline.recorder import record_stack

    refs = job.references
    recording = record_stack(
        job.root, job.stack, job.config.values, lambda name: refs.get(name), secret_keys=job.config.secret_keys
    )
    _settle_heap()
    reference = _Reference(recording.reference_outputs, recording.secret_outputs)
    return Planned(job.stack, reference, job.finish(StackPlan(job.stack, recording, job.config.values, job.root)))


@dataclass
class _HeapState:
    settled: bool = False
    """Whether a plan in this process has settled the heap (`_settle_heap`)."""


_heap = _HeapState()


def _settle_heap() -> None:
    """After this process's first plan, which imported what every plan needs (the SDK, the program, the provider
    modules it uses: a provider loads its modules lazily), exempt what the process holds from garbage collection.

    Every plan allocates hundreds of thousands of objects, and each full collection traverses the whole heap, the
    provider SDKs' half a million objects included. Frozen (`gc.freeze`, docs.python.org/3/library/gc.html), they
    are no longer traversed: a cold `plan --all` of the example fleet costs about a quarter less CPU, a plan of a
    few stacks in-process about a seventh (`./dev bench`). Collected first, so the first plan's garbage is not
    kept, and done once: anything frozen is never collected, so later plans' garbage must stay collectable."""
    if not _heap.settled:
        gc.collect()
        gc.freeze()
        _heap.settled = True


def _keep(plan: StackPlan) -> StackPlan:
    return plan


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT held back in this thread (and in processes and threads started from it) for the duration; one that
    arrived meanwhile is delivered when the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _warm_worker(root: Path) -> None:
    """Import the providers and components once per worker, not once per stack, and read the fleet's domain table
    (every partner's policies compare against it). A provider's modules stay lazy: loading every module a region
    uses costs a worker started for one partner more than that partner's plan saves. SIGINT is ignored (the parent
    stops its workers); it was blocked from the fork until here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if sys.path[:1] != [str(root)]:
        sys.path.insert(0, str(root))
    with contextlib.suppress(PlatformError):
        for_program(root).partner_domains()
    import_program(root)
    gc.freeze()  # the imports, out of the collector's sight from the first plan on (see _settle_heap)


def import_program(root: Path) -> None:
    """Import the SDK, the providers and the program's components (what every stack's plan needs first), the
    components from `root`'s folder (unless this process imported them already)."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import pulumi_aws  # noqa: F401
    import pulumi_kong  # noqa: F401
    import pulumi_kubernetes  # noqa: F401
    import pulumi_snowflake  # noqa: F401

    import components.partner_tenant
    import components.regional_deployment  # noqa: F401
