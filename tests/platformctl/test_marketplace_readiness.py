"""Images an integration stack's deploy would run: the egress proxy's (integrations/rules.yaml) and the conformance
job's services image (stack config, like the meter's). `validate --for-deploy integration-<id>` lists what is a
placeholder or not pinned by digest; `integration publish` refuses a placeholder proxy digest (exit 2, file and
field named, nothing written)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from foundation.yamlio import dump_yaml
from tests.conftest import Run, tree_snapshot
from tests.integrations.conftest import published_calsync

PINNED = "ghcr.io/voice-platform/platform-services@sha256:" + "4e" * 32
PLACEHOLDER_PROXY = "docker.io/ubuntu/squid@sha256:" + "0" * 64


def _placeholder_proxy(root: Path) -> None:
    rules = root / "integrations" / "rules.yaml"
    text = rules.read_text()
    start = text.index("  image: docker.io/ubuntu/squid@sha256:")
    end = text.index("\n", start)
    rules.write_text(text[:start] + f"  image: {PLACEHOLDER_PROXY}" + text[end:])
    from integrations.rules import _load_cached

    _load_cached.cache_clear()  # the rules are read once per process; this test edits them within one


def test_the_proxy_digest_in_the_rules_is_a_published_one(repo_copy: Path) -> None:
    from integrations.rules import load_rules, rules_file
    from platformctl.marketplace_readiness import placeholder_digest

    image = load_rules(rules_file(repo_copy)).egress_proxy.image
    assert image.startswith("docker.io/ubuntu/squid@sha256:") and not placeholder_digest(image)


def test_validate_for_deploy_names_the_unpinned_services_image(cli: Callable[..., Run], repo_copy: Path) -> None:
    published_calsync(repo_copy)
    run = cli("validate", "--for-deploy", "integration-calsync", code=1, root=repo_copy)
    assert (
        "stacks/Pulumi.integration-calsync.yaml: platform:servicesImage: "
        "'ghcr.io/voice-platform/platform-services:0.1.0' (Pulumi.yaml's default) is not pinned by digest"
    ) in run.out
    assert "egress_proxy.image" not in run.out
    stack = repo_copy / "stacks" / "Pulumi.integration-calsync.yaml"
    header = stack.read_text().split("\n", 1)[0]
    stack.write_text(header + "\n" + dump_yaml({"config": {"platform:servicesImage": PINNED}}))
    run = cli("validate", "--for-deploy", "integration-calsync", code=1, root=repo_copy)  # Kong's still are
    assert "servicesImage" not in run.out and "platform:kongAdminToken" in run.out


def test_a_placeholder_proxy_digest_is_reported_and_not_published(cli: Callable[..., Run], repo_copy: Path) -> None:
    published_calsync(repo_copy)
    _placeholder_proxy(repo_copy)
    run = cli("validate", "--for-deploy", "integration-calsync", code=1, root=repo_copy)
    assert "integrations/rules.yaml: egress_proxy.image: " in run.out and "placeholder digest" in run.out
    cli("integration", "suspend", "calsync", "--no-apply", root=repo_copy)
    before = tree_snapshot(repo_copy)
    run = cli("integration", "publish", "calsync", "--no-apply", code=2, root=repo_copy)
    assert "integrations/rules.yaml: egress_proxy.image:" in run.err and "placeholder digest" in run.err
    assert tree_snapshot(repo_copy) == before
