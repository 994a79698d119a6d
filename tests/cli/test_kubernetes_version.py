"""A region stack planned with a Kubernetes version out of EKS standard support fails with a clear message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fleet.stackconfig import declarations


def test_default_version_is_in_standard_support_today() -> None:
    import datetime

    from regions.catalog import load_catalog

    default = declarations(Path(__file__).resolve().parents[2])["platform:kubernetesVersion"].default
    assert load_catalog().cloud.standard_support_problem(default, datetime.date.today()) is None


def test_plan_refuses_a_version_past_standard_support(repo_copy: Path, cli: Callable[..., object]) -> None:
    stack_file = repo_copy / "stacks" / "Pulumi.region-eu-milan.yaml"
    stack_file.write_text(stack_file.read_text() + '  platform:kubernetesVersion: "1.29"\n')
    run = cli("plan", "region-eu-milan", code=2, root=repo_copy)
    text = run.out + run.err  # type: ignore[attr-defined]
    assert "platform:kubernetesVersion" in text
    assert "1.29 left EKS standard support on 2025-03-23" in text
