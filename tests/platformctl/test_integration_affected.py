"""ci-preview's affected stacks: an integration's spec or review record affects its stack; a partner's spec affects
the integration stacks it installs (their consumers), before and after the change."""

from __future__ import annotations

from pathlib import Path

from platformctl.ci.affected import affected_stacks
from platformctl.ci.git import FileChange
from scripts.fleet import copy_repo
from tests.conftest import ROOT


def test_integration_files_and_installs_affect_the_integration_stack(tmp_path: Path) -> None:
    base = copy_repo(ROOT, tmp_path / "base")
    head = copy_repo(ROOT, tmp_path / "head")
    for tree in (base, head):
        (tree / "stacks" / "Pulumi.integration-calsync.yaml").write_text("config: {}\n")
    spec = head / "partners" / "acme-voice.yaml"
    spec.write_text(spec.read_text() + "integrations: [calsync]\n")
    found = affected_stacks(
        base,
        head,
        [
            FileChange("M", "integrations/calsync.review.yaml"),
            FileChange("M", "partners/acme-voice.yaml"),
            FileChange("M", "integrations/rules.yaml"),
        ],
    )
    assert found["integration-calsync"] == [
        "integrations/calsync.review.yaml",
        "integrations/rules.yaml",  # the caps and allowlist rules shape the sandbox
        "partners/acme-voice.yaml",
    ]
    assert found["partner-acme-voice"] == ["partners/acme-voice.yaml"]
    assert "partner-sakura-calls" not in found
