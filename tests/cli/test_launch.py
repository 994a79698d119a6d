"""The console script finds the project before anything imports the program, and runs THAT project's program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.launch import root_option
from foundation.errors import INTERRUPTED_LINE
from scripts.fleet import copy_repo
from tests.conftest import ROOT

PLATFORMCTL = Path(sys.executable).with_name("platformctl")
COMPONENT = "components/snowflake_organization.py"
"""A component of the `global` stack, the one stack that reads no other: a plan of it runs the program and this
component and nothing else."""
MARKED = "Platform region"
"""The Snowflake region accounts' comment in COMPONENT: edited in each copy to tell the copies' plans apart."""


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without a project (no PLATFORMCTL_ROOT) and with this checkout's tool first."""
    env = {k: v for k, v in os.environ.items() if k not in ("PLATFORMCTL_ROOT", "PYTHONPATH")}
    return {**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **extra}


def _marked_copy(target: Path, mark: str) -> Path:
    root = copy_repo(ROOT, target)
    module = root / COMPONENT
    text = module.read_text(encoding="utf-8")
    assert MARKED in text
    module.write_text(text.replace(MARKED, f"Platform ({mark}) region"), encoding="utf-8")
    return root


def _comments(plan_file: Path) -> str:
    document = json.loads(plan_file.read_text(encoding="utf-8"))
    steps = document["stacks"]["global"]["steps"]
    return " ".join(str(step["newState"]["inputs"].get("comment", "")) for step in steps if "newState" in step)


def test_root_names_the_checkout_whose_program_is_planned_and_two_checkouts_do_not_mix(tmp_path: Path) -> None:
    """`--root` wins over the folder the command runs in and over PLATFORMCTL_ROOT, and the program (components
    included) comes from the checkout it names, not from the tool's own checkout nor from the other one."""
    first = _marked_copy(tmp_path / "first", "checkout one")
    second = _marked_copy(tmp_path / "second", "checkout two")
    cases = ((first, second, "checkout one", "checkout two"), (second, first, "checkout two", "checkout one"))
    for root, other, mark, unwanted in cases:
        out = tmp_path / f"{root.name}.json"
        run = subprocess.run(
            [str(PLATFORMCTL), "--root", str(root), "plan", "global", "--no-cache", "--json", str(out)],
            cwd=other,  # a project folder too: --root must win
            env=_env(PLATFORMCTL_ROOT=str(other)),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr
        comments = _comments(out)
        assert f"({mark})" in comments
        assert f"({unwanted})" not in comments
        assert MARKED not in comments  # not the tool's own checkout's component either


def test_outside_any_project_help_works_and_a_command_is_bad_input_naming_root(tmp_path: Path) -> None:
    """The installed tool outside a project (no PYTHONPATH, no PLATFORMCTL_ROOT, an empty folder): --help prints,
    a command that needs the program exits 2 with one line naming --root, and no traceback."""
    env = {k: v for k, v in os.environ.items() if k not in ("PLATFORMCTL_ROOT", "PYTHONPATH")}
    helped = subprocess.run([str(PLATFORMCTL), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and "Usage: platformctl" in helped.stdout, helped.stderr
    for args in (["plan"], ["plan", "--all"], ["validate"], ["--root", str(tmp_path / "nowhere"), "plan"]):
        run = subprocess.run([str(PLATFORMCTL), *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert run.returncode == 2, (args, run.stderr)
        assert "Traceback" not in run.stderr and "--root" in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--root", "/a", "plan"], Path("/a")),
        (["--root=/a", "plan"], Path("/a")),
        (["--debug", "--root", "/a", "plan", "--all"], Path("/a")),
        (["plan", "--root", "/a"], None),  # a command's option, which Click refuses: not the global one
        (["--", "--root", "/a"], None),
        (["--root"], None),  # no value: Click says so
        ([], None),
    ],
)
def test_the_global_root_option_is_read_where_click_reads_it(args: list[str], expected: Path | None) -> None:
    assert root_option(args) == expected


def test_a_checkouts_copies_of_the_tools_packages_never_shadow_the_running_tool(tmp_path: Path) -> None:
    """Every checkout holds platformctl/ and foundation/ too; with the checkout first on sys.path, only the
    program's packages may come from it, not the tool that is running."""
    root = copy_repo(ROOT, tmp_path / "repo")
    for package in ("platformctl", "foundation"):
        init = root / package / "__init__.py"
        init.write_text(init.read_text(encoding="utf-8") + f'\nraise SystemExit("the checkout\'s {package} ran")\n')
    run = subprocess.run(
        [str(PLATFORMCTL), "--root", str(root), "stacks"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and "partner-acme-voice" in run.stdout, run.stderr


def test_ctrl_c_while_the_cli_is_imported_exits_130_with_the_one_line(tmp_path: Path) -> None:
    """An interrupt that lands before `cli.app.main` watches for Ctrl-C (while its modules are still being
    imported) ends like one a moment later: the one line, exit 130, no traceback. A finder raises the interrupt at
    the import of `cli.app`, the point a real Ctrl-C reached in tests/cli/test_interrupt.py."""
    script = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'cli.app':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from cli.launch import launch\n"
        f"sys.argv = ['platformctl', '--root', {str(ROOT)!r}, 'plan', 'global']\n"
        "launch()\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert run.returncode == 130, run.stderr
    assert run.stderr.splitlines() == [INTERRUPTED_LINE] and run.stdout == ""
