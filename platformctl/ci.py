"""`platformctl ci-preview`: what a change between two git refs does to every stack it touches.

Both sides are exported with `git archive` into temporary directories (the working tree is never touched) and each
is planned by its own code in a child process, so an edited component is planned as edited."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from partners.spec import NOT_PARTNER_SPECS
from platformctl.errors import EngineError, InputError, PlatformError
from platformctl.planjson import diff_stack
from platformctl.stacks import StackKind
from platformctl.yamlio import load_yaml_file

EVERY_STACK = ("Pulumi.yaml", "policies/")
"""Changes here can alter any stack's plan or its policy results."""


# ---------------------------------------------------------------- git


def git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise EngineError("git is not installed") from None
    if done.returncode != 0:
        raise EngineError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def resolve_ref(root: Path, ref: str) -> str:
    if ref.startswith("-"):
        raise InputError.single("arguments", "REF", f"{ref!r} is not a git ref")
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except EngineError:
        raise InputError.single("arguments", "REF", f"unknown git ref {ref!r}") from None


@dataclass(frozen=True)
class FileChange:
    status: str
    """A, M, D or R (git's letters)."""
    path: str
    """Path at head (at base for a deletion)."""
    old_path: str | None = None
    """Path at base, for renames."""


def changed_files(root: Path, base: str, head: str) -> list[FileChange]:
    changes = []
    for line in git(root, "diff", "--name-status", "-M", base, head).splitlines():
        parts = line.split("\t")
        status = parts[0][0]
        if status == "R":
            changes.append(FileChange("R", parts[2], parts[1]))
        else:
            changes.append(FileChange(status, parts[1]))
    return changes


def export_tree(root: Path, sha: str, destination: Path) -> Path:
    """The commit's files in `destination`, through `git archive` (no worktree, no checkout)."""
    archive = subprocess.run(["git", "archive", "--format=tar", sha], cwd=root, capture_output=True, check=False)
    if archive.returncode != 0:
        raise EngineError(f"git archive {sha}: {archive.stderr.decode(errors='replace').strip()}")
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as buffer:
        buffer.write(archive.stdout)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            tar.extractall(destination, filter="data")
    return destination


# ---------------------------------------------------------------- which stacks a change affects


def module_file(tree: Path, module: str) -> Path | None:
    base = tree / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(tree: Path, node: ast.AST, package: str) -> set[str]:
    found: set[str] = set()
    for item in ast.walk(node):
        if isinstance(item, ast.Import):
            found.update(alias.name for alias in item.names)
        elif isinstance(item, ast.ImportFrom):
            if item.level:
                parts = package.split(".")[: len(package.split(".")) - item.level + 1]
                base = ".".join([*parts, item.module] if item.module else parts)
            else:
                base = item.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in item.names)
    # Keep this repository's modules (and their parent packages), drop the SDKs and the standard library.
    local = set()
    for name in found:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if module_file(tree, prefix):
                local.add(prefix)
    return local


def kind_modules(tree: Path) -> dict[StackKind, set[str]]:
    """Every repository module the program imports when it builds each kind of stack (transitively)."""
    program = tree / "__main__.py"
    if not program.is_file():
        return {kind: set() for kind in StackKind}
    syntax = ast.parse(program.read_text(encoding="utf-8"))
    common = set()
    for node in syntax.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            common |= _imports(tree, node, "")
    result = {}
    for kind in StackKind:
        builder = next(
            (n for n in syntax.body if isinstance(n, ast.FunctionDef) and n.name == f"build_{kind.value}"), None
        )
        pending = common | (_imports(tree, builder, "") if builder else set())
        seen: set[str] = set()
        while pending:
            module = pending.pop()
            if module in seen:
                continue
            seen.add(module)
            path = module_file(tree, module)
            if path is not None:
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                pending |= _imports(tree, ast.parse(path.read_text(encoding="utf-8")), package)
        result[kind] = seen
    return result


def data_owners(tree: Path, data_file: str) -> set[str]:
    """Modules in the data file's folder that name it: its loaders."""
    folder, name = os.path.split(data_file)
    owners = set()
    for source in (tree / folder).glob("*.py"):
        if f'"{name}"' in source.read_text(encoding="utf-8"):
            module = (
                f"{folder.replace('/', '.')}.{source.stem}" if source.stem != "__init__" else folder.replace("/", ".")
            )
            owners.add(module)
    return owners


def _stacks_in(tree: Path) -> set[str]:
    return {p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (tree / "stacks").glob("Pulumi.*.yaml")}


def _read(path: Path) -> Any:
    """A YAML file of either side, read with the bounded loader (a pull request's files are untrusted)."""
    try:
        return load_yaml_file(path)
    except InputError:
        return None


def _home_region(tree: Path, partner_id: str) -> str | None:
    doc = _read(tree / "partners" / f"{partner_id}.yaml")
    return doc.get("home_region") if isinstance(doc, dict) else None


def _partners_homed(trees: list[Path], region: str) -> set[str]:
    return {
        f"partner-{p.stem}"
        for tree in trees
        for p in (tree / "partners").glob("*.yaml")
        if p.name not in NOT_PARTNER_SPECS and _home_region(tree, p.stem) == region
    }


def _region_entries(tree: Path) -> dict[str, Any]:
    doc = _read(tree / "regions" / "regions.yaml")
    return (doc.get("regions") or {}) if isinstance(doc, dict) else {}


def affected_stacks(base: Path, head: Path, changes: list[FileChange]) -> dict[str, list[str]]:
    """Stack name → the changed files that affect it."""
    trees = [head, base]
    every = _stacks_in(head) | _stacks_in(base)
    of_kind = {kind: {s for s in every if s == kind.value or s.startswith(f"{kind.value}-")} for kind in StackKind}
    usage = [kind_modules(tree) for tree in trees]
    reasons: dict[str, set[str]] = defaultdict(set)

    def hit(stacks: set[str], path: str) -> None:
        for stack in stacks:
            reasons[stack].add(path)

    def kinds_using(modules: set[str]) -> set[str]:
        return {s for kind in StackKind for use in usage if modules & use[kind] for s in of_kind[kind]}

    for change in changes:
        for path in {change.path, change.old_path} - {None}:
            assert path is not None
            match = re.fullmatch(r"stacks/Pulumi\.(.+)\.yaml", path)
            spec = re.fullmatch(r"partners/([a-z][a-z0-9-]*)\.yaml", path)
            if path in EVERY_STACK or any(path.startswith(p) for p in EVERY_STACK if p.endswith("/")):
                hit(every, path)
            elif match:
                stack = match.group(1)
                hit({stack}, path)
                if stack == "global":
                    hit(every, path)
                elif stack.startswith("region-"):
                    hit(_partners_homed(trees, stack.removeprefix("region-")), path)
            elif spec and f"{spec.group(1)}.yaml" not in NOT_PARTNER_SPECS:
                hit({f"partner-{spec.group(1)}"}, path)
            elif path == "regions/regions.yaml":
                before, after = _region_entries(base), _region_entries(head)
                for code in set(before) | set(after):
                    if before.get(code) != after.get(code):
                        hit({f"region-{code}"} | _partners_homed(trees, code), path)
            elif path.endswith(".py") and not path.startswith(("tests/", "cli/", "scripts/")):
                module = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
                hit(kinds_using({module}), path)
            elif path.endswith((".yaml", ".yml", ".json")) and "/" in path:
                owners = set().union(*(data_owners(tree, path) for tree in trees))
                hit(kinds_using(owners), path)
    return {stack: sorted(paths) for stack, paths in sorted(reasons.items())}


# ---------------------------------------------------------------- planning both sides


def plan_tree(tree: Path, stacks: list[str]) -> dict[str, Any]:
    """Plan `stacks` (those the tree has) with the tree's own code, in a child process."""
    present = sorted(set(stacks) & _stacks_in(tree))
    if not present:
        return {"stacks": {}, "violations": [], "errors": {}}
    out = tree / ".platformctl-ci-plan.json"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-c", "from platformctl.ci import plan_tree_main; plan_tree_main()", str(out), *present]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.is_file():
        raise EngineError(f"planning {tree.name} failed:\n{(done.stderr or done.stdout).strip()[-4000:]}")
    return json.loads(out.read_text(encoding="utf-8"))


def plan_tree_main() -> None:
    """Child-process side of `plan_tree`: plan the stacks, one at a time where one fails, and write the result."""
    from platformctl.planning import run_plan
    from platformctl.repo import Repo
    from platformctl.stacks import parse_stack_name

    out, names = Path(sys.argv[1]), sys.argv[2:]
    repo = Repo(Path.cwd())
    stacks = [parse_stack_name(name) for name in names]
    result: dict[str, Any] = {"stacks": {}, "violations": [], "errors": {}}
    try:
        plans = [run_plan(repo, stacks)]
    except PlatformError:
        # Something does not plan: plan each stack alone so the others are still reported.
        plans = []
        for stack in stacks:
            try:
                plans.append(run_plan(repo, [stack]))
            except PlatformError as exc:
                result["errors"][str(stack)] = str(exc)
    for planned in plans:
        result["stacks"].update(planned.document["stacks"])
        result["violations"] += [v.__dict__ for v in planned.violations]
    out.write_text(json.dumps(result), encoding="utf-8")


# ---------------------------------------------------------------- the report


@dataclass
class Preview:
    base: str
    """Base commit."""
    head: str
    """Head commit."""
    affected: dict[str, list[str]]
    """Stack → the changed files that affect it."""
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Stack → steps (diffed) and changeSummary."""
    violations: list[dict[str, Any]] = field(default_factory=list)
    """Policy findings at head, and stacks head cannot plan."""

    @property
    def mandatory(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if v["level"] == "mandatory"]

    def document(self) -> dict[str, Any]:
        return {"base": self.base, "head": self.head, "stacks": self.stacks, "violations": self.violations}


def ci_preview(root: Path, base_ref: str, head_ref: str) -> Preview:
    base, head = resolve_ref(root, base_ref), resolve_ref(root, head_ref)
    changes = changed_files(root, base, head)
    with tempfile.TemporaryDirectory(prefix="platformctl-ci-") as tmp:
        base_tree = export_tree(root, base, Path(tmp) / "base")
        head_tree = export_tree(root, head, Path(tmp) / "head")
        affected = affected_stacks(base_tree, head_tree, changes)
        preview = Preview(base=base, head=head, affected=affected)
        if not affected:
            return preview
        before = plan_tree(base_tree, list(affected))
        after = plan_tree(head_tree, list(affected))
    for stack in affected:
        if stack in after["errors"]:
            preview.stacks[stack] = {"steps": [], "changeSummary": {}, "error": after["errors"][stack]}
            preview.violations.append(
                {
                    "stack": stack,
                    "urn": f"stack:{stack}",
                    "policy": "plannable",
                    "level": "mandatory",
                    "message": after["errors"][stack],
                }
            )
            continue
        diffed = diff_stack(before["stacks"].get(stack), after["stacks"].get(stack))
        diffed.pop("outputs", None)
        preview.stacks[stack] = diffed
    preview.violations += [
        {key: v[key] for key in ("stack", "urn", "policy", "level", "message")} for v in after["violations"]
    ]
    return preview


def markdown(preview: Preview) -> str:
    """The pull-request comment: violations first, then each stack's counts and changed resources."""
    lines = ["<!-- platformctl-ci-preview -->", f"## Stack previews `{preview.base[:10]}` → `{preview.head[:10]}`", ""]
    if not preview.affected:
        lines.append("This change touches nothing plannable: no stack is affected.")
        return "\n".join(lines) + "\n"
    mandatory = preview.mandatory
    if preview.violations:
        title = f"### ❌ {len(mandatory)} mandatory policy violation(s)" if mandatory else "### ⚠️ Advisory findings"
        lines += [title, "", "| level | policy | stack | resource | message |", "|---|---|---|---|---|"]
        for v in preview.violations:
            lines.append(
                f"| {v['level']} | {v['policy']} | `{v['stack']}` | `{_cell(v['urn'].rsplit('::', 1)[-1])}` "
                f"| {_cell(v['message'])} |"
            )
        lines.append("")
    else:
        lines += ["### ✅ No policy violations", ""]
    for stack, result in preview.stacks.items():
        counts = result.get("changeSummary", {})
        summary = " · ".join(f"{op} {counts.get(op, 0)}" for op in ("create", "update", "delete", "same"))
        lines += [
            f"### `{stack}`",
            "",
            summary if "error" not in result else f"cannot be planned: {_cell(result['error'])}",
            "",
        ]
        changed = [s for s in result["steps"] if s["op"] != "same"]
        if changed:
            lines += [
                f"<details><summary>{len(changed)} changed resource(s)</summary>",
                "",
                "| op | resource | type | changed inputs |",
                "|---|---|---|---|",
            ]
            for step in changed:
                state = step.get("newState") or step.get("oldState") or {}
                diffs = ", ".join(f"`{d}`" for d in step.get("diffs", []))
                name = _cell(step["urn"].rsplit("::", 1)[-1])
                lines.append(f"| {step['op']} | `{name}` | `{state.get('type', '')}` | {diffs} |")
            lines += ["", "</details>", ""]
        lines.append(f"<sub>affected by: {', '.join(f'`{p}`' for p in preview.affected[stack])}</sub>")
        lines.append("")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")
