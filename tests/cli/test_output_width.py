"""Output that is not a terminal's is never cut to a width, and help keeps examples and URLs as written (issue 18,
item 19): a table piped to a file used to be cut at 80 columns (`acme-voi…`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PLATFORMCTL = Path(sys.executable).with_name("platformctl")
LONG_ID = "a" + "b" * 38 + "c"
"""The longest partner id the spec allows (40 characters)."""


def with_long_partner(root: Path) -> Path:
    spec = (root / "partners" / "acme-voice.yaml").read_text().replace("id: acme-voice", f"id: {LONG_ID}")
    (root / "partners" / f"{LONG_ID}.yaml").write_text(spec.replace("voice.acme.example", "voice.long.example"))
    stack = root / "stacks" / "Pulumi.partner-acme-voice.yaml"
    (root / "stacks" / f"Pulumi.partner-{LONG_ID}.yaml").write_text(stack.read_text())
    return root


@pytest.mark.parametrize("columns", ["40", "80", None])
def test_listings_off_a_terminal_keep_every_value_whole(cli, repo_copy: Path, monkeypatch, columns) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    root = with_long_partner(repo_copy)
    rows = [line for line in cli("partners", root=root).out.splitlines() if LONG_ID in line]
    assert len(rows) == 1 and "voice.long.example" in rows[0] and "…" not in rows[0]
    stacks = cli("stacks", root=root).out
    assert f"stacks/Pulumi.partner-{LONG_ID}.yaml" in stacks and "…" not in stacks
    countries = cli("countries", root=root).out
    assert "…" not in countries and "United States" in countries


def test_a_piped_listing_and_plan_table_are_not_cut(repo_copy: Path, tmp_path: Path) -> None:
    """A real pipe, with COLUMNS saying 40: the plan's summary table (more than three stacks) and a listing."""
    root = with_long_partner(repo_copy)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "40"}
    env.pop("PLATFORMCTL_ROOT", None)
    stacks = ["global", "region-eu-central", "partner-acme-voice", f"partner-{LONG_ID}"]
    for args in (["partners"], ["plan", *stacks, "--workers", "1"]):
        run = subprocess.run(
            [str(PLATFORMCTL), "--root", str(root), *args], capture_output=True, text=True, env=env, timeout=300
        )
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stdout + run.stderr
        assert "…" not in run.stdout
        assert any(LONG_ID in line for line in run.stdout.splitlines()), run.stdout


def test_help_keeps_examples_on_their_own_lines_and_urls_whole(cli, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    validate = cli("validate", "--help").out.splitlines()
    examples = [line.strip() for line in validate if "Example:" in line]
    assert examples == [
        "Example: platformctl validate partners/examples/pampas-voz.yaml",
        "Example: platformctl validate --for-deploy region-eu-central",
    ]
    serve = cli("meter", "serve", "--help").out
    assert "--public-url https://meter.eu-central.voice-platform.example" in serve
    assert "Plan stacks offline" in cli("plan", "--help").out  # the description still wraps as a paragraph
