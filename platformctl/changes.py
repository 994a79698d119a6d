"""The one change path: every edit of a spec or stack file is decided and written here.

A change is decided and written under the locks of everything it touches, so what it read cannot change
before it writes: the partner's or region's own lock, held through the engine apply, and the fleet lock while
it checks fleet-wide rules (domain ownership) and writes. Stack files are edited in place (every key, comment
and encrypted value the command does not own survives); the spec bytes that were validated are the bytes
written; all files of one change are written under a journal, so a crash leaves all or none (see `journal`),
and the next change that takes the same locks recovers it first.

What to change is decided elsewhere: partners (`partner_changes`), country launches (`country_launches`),
integrations (`integrations`), a single config value (`config_change` here: verify-domain, billing connect).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from fleet.repo import Repo
from foundation.errors import InputError, PlatformError
from foundation.stacks import StackName
from foundation.yamlio import decode_text, dump_yaml, edit_yaml_text, read_bounded, remove_key, write_atomic
from platformctl import journal as journals
from platformctl.dry_run import dry_run_plan
from platformctl.locking import FLEET, holding


class Mode(StrEnum):
    DRY_RUN = "dry-run"
    """Write nothing; plan the change offline."""
    NO_APPLY = "no-apply"
    """Write the spec and stack files; CI previews and applies them."""
    APPLY = "apply"
    """Write, then preview and update through the real engine."""


@dataclass
class Change:
    """What a command decided: the files it writes and the stacks they affect."""

    files: dict[Path, bytes | None] = field(default_factory=dict)
    """New bytes per file; None deletes the file."""
    stacks: list[StackName] = field(default_factory=list)
    """Stacks whose plan the change alters."""
    warnings: list[str] = field(default_factory=list)
    """Things worth saying that do not stop the change."""
    notes: list[str] = field(default_factory=list)
    """What was done, for the summary."""
    operations: list[tuple[StackName, str]] = field(default_factory=list)
    """Engine operations to run after writing (APPLY mode), in order."""
    delete_after_apply: list[Path] = field(default_factory=list)
    """Files removed once the engine operations succeeded (APPLY mode)."""
    compare: bool = False
    """The stacks exist already: a dry run shows what changes against their current plan."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Webhook events posted once the engine applied the change (APPLY mode; platformctl/webhook_events.py)."""


class AbortedError(PlatformError):
    """The user declined to apply; the files were restored."""


@dataclass(frozen=True)
class SpecInput:
    """A spec file given on the command line, read once."""

    display: str
    """The path as the user gave it (for messages)."""
    raw: bytes
    """Its bytes: validated and, unchanged, written."""


# ---------------------------------------------------------------- stack files, edited in place

STACK_HEADER = "# Written by platformctl; reviewed in pull requests.\n"


def edit_stack_file(repo: Repo, stack: StackName, set_values: dict[str, Any], delete: tuple[str, ...] = ()) -> bytes:
    """The stack file with `set_values` set and `delete` removed under `config:`; everything else kept."""
    path = repo.stack_file(stack)
    display = f"stacks/{path.name}"
    if not path.exists():
        return (STACK_HEADER + dump_yaml({"config": dict(set_values)})).encode("utf-8")
    text = decode_text(read_bounded(path, display), display)
    repo.stack_config(stack)  # the file must be a valid stack file before it is edited

    def edit(document: Any) -> None:
        from ruamel.yaml.comments import CommentedMap

        if document.get("config") is None:
            document["config"] = CommentedMap()
        config = document["config"]
        for key in delete:
            remove_key(config, key)
        for key, value in set_values.items():
            config[key] = value

    return edit_yaml_text(text, display, edit).encode("utf-8")


def config_change(repo: Repo, stack: StackName, set_values: Mapping[str, Any], delete: Iterable[str] = ()) -> Change:
    """A change to the `config:` of one existing stack file: `set_values` set, `delete` removed, every other key,
    comment and encrypted value kept. A change with no files (nothing is written) when the file already says so."""
    if not repo.has_stack(stack):
        raise InputError.single(f"stacks/Pulumi.{stack}.yaml", "", f"{stack} has no stack file")
    removed = tuple(delete)
    current = repo.stack_config(stack).file_values
    if all(key in current and current[key] == value for key, value in set_values.items()) and not any(
        key in current for key in removed
    ):
        return Change()
    return Change(
        files={repo.stack_file(stack): edit_stack_file(repo, stack, dict(set_values), delete=removed)},
        stacks=[stack],
        compare=True,
    )


def write_change(
    root: Path, locks: list[str], decide: Callable[[Repo], Change], warn: Callable[[str], None]
) -> ChangeResult:
    """Write what `decide` returns, with nothing to apply or confirm (a step that records a fact in a stack file).

    The one change path: `decide` runs on a fresh read under `locks` (and the fleet lock), the files are written
    under a journal, and interrupted changes to the same stacks are recovered first (each note goes to `warn`,
    with the repository's warnings). The result's `change.files` is empty when nothing needed writing."""
    hooks = Hooks(say=lambda _: None, warn=warn, confirm=lambda _: False)
    return carry_out(root, locks, decide, Mode.NO_APPLY, hooks)


# ---------------------------------------------------------------- carrying a change out


@dataclass
class Hooks:
    """How a change talks to the person running it (the CLI supplies these; tests supply their own)."""

    say: Callable[[str], None]
    """Print one line of progress."""
    warn: Callable[[str], None]
    """Print one warning."""
    confirm: Callable[[str], bool]
    """Ask before applying; False stops the change and restores the files."""
    engine_output: Callable[[str], None] | None = None
    """Stream the engine's output."""


@dataclass
class ChangeResult:
    """What carrying out a change did."""

    change: Change
    """What was decided."""
    plan: Any = None
    """The dry run's PlanResult (diffed against the current files when the stacks exist)."""


def carry_out(
    root: Path,
    locks: list[str],
    decide: Callable[[Repo], Change],
    mode: Mode,
    hooks: Hooks,
    engine: Any = None,
) -> ChangeResult:
    """Decide the change under its locks, then plan it (dry run), write it, or write and apply it.

    `decide` runs against a fresh read of the repository taken after the locks are held, so nothing it read can
    change before the files are written."""
    if mode is Mode.DRY_RUN:
        repo = Repo(root)
        change = decide(repo)
        _warn_all(hooks, repo, change)
        return ChangeResult(change, dry_run_plan(repo, change))
    state_dir = Repo(root).state_dir
    wanted = _with_journal_locks(root, state_dir, locks)
    with holding(state_dir, wanted):
        _recover(root, state_dir, wanted, hooks.warn)
        with holding(state_dir, [FLEET]):
            repo = Repo(root)
            change = decide(repo)
            _warn_all(hooks, repo, change)
            if not change.files:
                return ChangeResult(change)
            journal = journals.begin(root, state_dir, wanted, change.files)
            _write(change)
            journal.move_to("written")
        for path, content in change.files.items():
            hooks.say(f"{'removed' if content is None else 'wrote'} {repo.display(path)}")
        if mode is Mode.NO_APPLY or not change.operations:
            journal.close()
            return ChangeResult(change)
        _apply(repo, change, journal, hooks, engine)
        return ChangeResult(change)


def recover_interrupted(root: Path, locks: list[str], warn: Callable[[str], None]) -> bool:
    """Finish the interrupted changes that held any of `locks` (under all of their locks), so that what is read next
    is what a finished change left; each note goes to `warn`. Returns whether there was one. For a step that reads a
    stack before it decides to change it (a change itself recovers first on its own)."""
    state_dir = Repo(root).state_dir
    if not any(set(locks) & set(journal.locks) for journal in journals.pending(root, state_dir)):
        return False
    wanted = _with_journal_locks(root, state_dir, locks)
    with holding(state_dir, wanted):
        _recover(root, state_dir, wanted, warn)
    return True


def _recover(root: Path, state_dir: Path, held: list[str], warn: Callable[[str], None]) -> None:
    for note in journals.recover([j for j in journals.pending(root, state_dir) if set(j.locks) <= set(held)]):
        warn(f"recovered: {note}")


def _with_journal_locks(root: Path, state_dir: Path, locks: list[str]) -> list[str]:
    """A crashed change that touched one of our stacks is finished first, under all of its locks."""
    wanted = set(locks)
    for journal in journals.pending(root, state_dir):
        if wanted & set(journal.locks):
            wanted |= set(journal.locks)
    return sorted(wanted)


def _warn_all(hooks: Hooks, repo: Repo, change: Change) -> None:
    for warning in dict.fromkeys([*repo.warnings, *change.warnings]):
        hooks.warn(warning)


def _write(change: Change) -> None:
    for path, content in change.files.items():
        if content is None:
            path.unlink(missing_ok=True)
        else:
            write_atomic(path, content)


def _apply(repo: Repo, change: Change, journal: journals.Journal, hooks: Hooks, engine: Any) -> None:
    if engine is None:
        from platformctl import engine as real_engine

        engine = real_engine
    try:
        for stack in dict.fromkeys(s for s, _ in change.operations):
            engine.run(repo, stack, "preview", on_output=hooks.engine_output)
    except PlatformError:
        restored = journal.rollback()
        hooks.warn(f"preview failed: the files were restored ({', '.join(restored) or 'unchanged'})")
        raise
    if not hooks.confirm("apply these changes"):
        restored = journal.rollback()
        raise AbortedError(f"not applied: the files were restored ({', '.join(restored) or 'unchanged'})")
    journal.move_to("applying")
    for stack, operation in change.operations:
        try:
            engine.run(repo, stack, operation, on_output=hooks.engine_output)
        except PlatformError as exc:
            journal.close()
            raise type(exc)(
                f"{exc}\nthe files stay as written (they describe what was being applied); "
                f"fix the cause and run `platformctl {operation} {stack}`"
            ) from exc
    for path in change.delete_after_apply:
        path.unlink(missing_ok=True)
        hooks.say(f"removed {repo.display(path)}")
    journal.close()
    if change.events:
        import os

        from platformctl.webhook_events import send

        sent, notes = send(change.events, os.environ)
        for line in sent:
            hooks.say(line)
        for note in notes:
            hooks.warn(note)
