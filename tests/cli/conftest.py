"""The one way CLI tests run platformctl: in-process, checking the exit code and that no traceback leaked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.app import main


@dataclass
class Run:
    code: int
    """Exit code."""
    out: str
    """Standard output."""
    err: str
    """Standard error."""


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """`cli(*args, code=0, root=None)`: run platformctl, assert its exit code and that no traceback leaked."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("PLATFORMCTL_ROOT", raising=False)

    def run(*args: str, code: int = 0, root: Path | None = None) -> Run:
        argv = (["--root", str(root)] if root is not None else []) + list(args)
        capsys.readouterr()
        exit_code = main(argv)
        captured = capsys.readouterr()
        result = Run(exit_code, captured.out, captured.err)
        assert exit_code == code, f"exit {exit_code} (wanted {code})\nstdout:\n{result.out}\nstderr:\n{result.err}"
        if "--debug" not in args:
            assert "Traceback" not in result.out + result.err, result.err
        return result

    return run


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the repository's partners/ and stacks/ (to prove nothing was written)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for folder in ("partners", "stacks")
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }
