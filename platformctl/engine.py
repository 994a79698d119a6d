"""The real engine: the Pulumi Automation API over this repository (LocalWorkspace)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from fleet.repo import Repo
from foundation.errors import EngineError
from foundation.stacks import StackName

Operation = Literal["preview", "up", "destroy", "refresh"]
INSTALL_HINT = (
    "the Pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/install/, e.g. "
    "`curl -fsSL https://get.pulumi.com | sh`), or use `platformctl plan` for an offline plan"
)


def _automation() -> ModuleType:
    """Imported on first use: `platformctl --help` must not pay for the Automation API."""
    from pulumi import automation

    return automation


@dataclass(frozen=True)
class EngineSettings:
    backend_url: str
    """Where state lives: PULUMI_BACKEND_URL, else a file backend in the repo's .platformctl/state."""
    env: dict[str, str]
    """Environment handed to the Pulumi CLI."""
    policy_packs: list[str]
    """Policy packs every preview and update runs."""
    secrets_provider: str | None
    """`passphrase` on the local file backend; the backend's default elsewhere."""


def settings_for(repo: Repo) -> EngineSettings:
    backend = os.environ.get("PULUMI_BACKEND_URL") or (repo.state_dir / "state").as_uri()
    env = {"PULUMI_BACKEND_URL": backend}
    if backend.startswith("file://"):
        (repo.state_dir / "state").mkdir(parents=True, exist_ok=True)
        if "PULUMI_CONFIG_PASSPHRASE" not in os.environ and "PULUMI_CONFIG_PASSPHRASE_FILE" not in os.environ:
            raise EngineError(
                "the local file backend encrypts secrets with a passphrase: set PULUMI_CONFIG_PASSPHRASE "
                "(or PULUMI_CONFIG_PASSPHRASE_FILE), or point PULUMI_BACKEND_URL at another backend"
            )
    packs = [str(repo.root / "policies")] if (repo.root / "policies" / "PulumiPolicy.yaml").is_file() else []
    secrets = "passphrase" if backend.startswith("file://") else None
    return EngineSettings(backend_url=backend, env=env, policy_packs=packs, secrets_provider=secrets)


# How the real engine finds the program's packages, which are not installed (only the tool is: pyproject.toml):
# LocalWorkspace runs the Pulumi CLI in `work_dir` (the project), whose Python language host starts
# `pulumi-language-python-exec ... --pwd <project> .` (the entry point is "." for the program's folder:
# pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go, constructArguments), and the exec shim runs it with
# `runpy.run_path(args.PROGRAM, run_name="__main__")` (sdk/python/cmd/pulumi-language-python-exec). For a folder,
# runpy puts that folder first on sys.path before running its __main__.py (Python docs, runpy.run_path), so
# `import components` / `import fleet` resolve in the project, as in the offline planner (cli/launch.py). The policy
# pack is started differently: policies/__main__.py says how.
def run(
    repo: Repo,
    stack: StackName,
    operation: Operation,
    on_output: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one operation on one stack; returns its change summary. Any engine failure is an EngineError."""
    settings, auto, options = _workspace(repo)
    try:
        workspace_stack = auto.create_or_select_stack(stack_name=str(stack), work_dir=str(repo.root), opts=options)
        if operation == "preview":
            result = workspace_stack.preview(on_output=on_output, policy_packs=settings.policy_packs, diff=True)
            return dict(result.change_summary)
        if operation == "up":
            result = workspace_stack.up(on_output=on_output, policy_packs=settings.policy_packs, diff=True)
            return dict(result.summary.resource_changes or {})
        if operation == "destroy":
            result = workspace_stack.destroy(on_output=on_output)
            return dict(result.summary.resource_changes or {})
        result = workspace_stack.refresh(on_output=on_output)
        return dict(result.summary.resource_changes or {})
    except EngineError:
        raise
    except Exception as exc:  # the Automation API raises CommandError and friends
        raise EngineError(f"pulumi {operation} {stack} failed: {_first_lines(str(exc))}") from exc


def run_locked(
    repo: Repo,
    stack: StackName,
    operation: Operation,
    on_output: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """`run` while holding the stack's lock, so no spec change lands in the middle of an update."""
    from platformctl.locking import exclusive

    if operation == "preview":
        return run(repo, stack, operation, on_output)
    with exclusive(repo.state_dir, str(stack)):
        return run(repo, stack, operation, on_output)


def _workspace(repo: Repo) -> tuple[EngineSettings, Any, Any]:
    """The engine settings, the Automation API module and the workspace options over this repository; the Pulumi
    CLI must be on PATH."""
    if shutil.which("pulumi") is None:
        raise EngineError(INSTALL_HINT)
    settings = settings_for(repo)
    auto = _automation()
    options = auto.LocalWorkspaceOptions(env_vars=settings.env, secrets_provider=settings.secrets_provider)
    return settings, auto, options


def _first_lines(text: str, limit: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[:limit])


def stack_outputs(repo: Repo, stack: StackName) -> dict[str, Any]:
    """The outputs of a deployed stack, secrets in clear (for the caller to use, never to print)."""
    _, auto, options = _workspace(repo)
    try:
        selected = auto.select_stack(stack_name=str(stack), work_dir=str(repo.root), opts=options)
        outputs = selected.outputs()
    except Exception as exc:  # the Automation API raises CommandError and friends
        raise EngineError(f"reading the outputs of {stack} failed: {_first_lines(str(exc), 3)}") from exc
    return {name: getattr(value, "value", value) for name, value in dict(outputs).items()}
