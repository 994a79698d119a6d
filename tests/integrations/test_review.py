"""`platformctl integration submit`: the automated review refuses each bad spec (exit 2, reason named, nothing
written) and records a good one with its digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import tree_snapshot
from tests.integrations.conftest import EXAMPLE, integration_file

DEVELOPER = {
    "id": "tempo-labs",
    "legal_name": "Tempo Labs GmbH",
    "website": "https://tempo-labs.example",
    "email": "dev@tempo-labs.example",
    "country": "DE",
}
LIMITS = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}

REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    ("tag", {"image": "registry.tempo-labs.example/calsync:1.4"}, "image", "pinned by digest"),
    ("latest", {"image": "registry.tempo-labs.example/calsync@sha256:abc"}, "image", "pinned by digest"),
    (
        "cpu-cap",
        {"resources": {**LIMITS, "limits": {"cpu": "1", "memory": "512Mi"}}},
        "resources.limits.cpu",
        "above the cap of 500m",
    ),
    (
        "memory-cap",
        {"resources": {**LIMITS, "limits": {"cpu": "500m", "memory": "1Gi"}}},
        "resources.limits.memory",
        "above the cap of 512Mi",
    ),
    ("storage-cap", {"resources": {**LIMITS, "storage": "5Gi"}}, "resources.storage", "above the cap of 1Gi"),
    ("no-limits", {"resources": {"requests": {"cpu": "100m"}}}, "resources.limits.cpu", "is missing"),
    ("unknown-scope", {"scopes": ["calls:read", "billing:write"]}, "scopes.1", "unknown scope 'billing:write'"),
    ("broad-scope", {"scopes": ["calls:read", "knowledge:write"]}, "scopes.1", "broader than a calendar integration"),
    ("health-data", {"data_classes": ["contact", "health"]}, "data_classes.1", "'health' data may not be processed"),
    ("payment-us", {"data_classes": ["payment"], "regions": ["us-east"]}, "data_classes.0", "in us-east"),
    ("http-egress", {"egress": ["http://calendar.googleapis.example"]}, "egress.0", "plain http is refused"),
    ("wildcard-egress", {"egress": ["*.googleapis.example"]}, "egress.0", "wildcards are refused"),
    ("url-egress", {"egress": ["https://calendar.googleapis.example/v3"]}, "egress.0", "exact hostname only"),
    ("ip-egress", {"egress": ["10.0.0.1"]}, "egress.0", "hostname"),
    ("no-health", {"health_path": None}, "health_path", "is missing"),
    ("partner-id", {"id": "acme-voice"}, "id", "is a partner's id"),
    ("unknown-region", {"regions": ["eu-moon"]}, "regions.0", "unknown region"),
    ("share-row", {"revenue_share": "generous"}, "revenue_share", "unknown row"),
    ("currency", {"pricing": {"monthly": {"XXY": 100}}}, "pricing.monthly.XXY", "unknown currency"),
    ("unknown-field", {"custom_js": "alert(1)"}, "custom_js", "unknown field"),
    # The developer's share is taken of the price in its payout currency (DE: EUR), so that price must be listed.
    ("payout-currency", {"pricing": {"monthly": {"USD": 1000}}}, "pricing.monthly", "no price in EUR"),
    (
        "developer-country",
        {"developer": {**DEVELOPER, "country": "ZZ"}},
        "developer.country",
        "ZZ: no region serves it",
    ),
]


@pytest.mark.parametrize(("label", "changes", "field", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_refusal_names_its_reason_and_writes_nothing(
    cli, repo_copy: Path, tmp_path: Path, label: str, changes: dict[str, Any], field: str, reason: str
) -> None:
    if changes.get("health_path", "") is None:
        doc = yaml.safe_load(EXAMPLE.read_text())
        doc.pop("health_path")
        spec = tmp_path / "spec.yaml"
        spec.write_text(yaml.safe_dump(doc))
    else:
        spec = integration_file(tmp_path, **changes)
    before = tree_snapshot(repo_copy)
    run = cli("integration", "submit", str(spec), "--yes", code=2, root=repo_copy)
    assert f"{spec}: {field}: " in run.err, run.err
    assert reason in run.err, run.err
    assert tree_snapshot(repo_copy) == before
    assert not (repo_copy / "integrations" / "calsync.yaml").exists()


def test_every_refusal_of_one_spec_is_reported_at_once(cli, repo_copy: Path, tmp_path: Path) -> None:
    spec = integration_file(
        tmp_path, image="registry.example/x:latest", egress=["*.example.com", "http://a.example"], scopes=["nope:x"]
    )
    run = cli("integration", "submit", str(spec), "--yes", code=2, root=repo_copy)
    for field in ("image", "egress.0", "egress.1", "scopes.0"):
        assert f"{spec}: {field}: " in run.err


def test_good_spec_is_written_with_a_review_record_bound_to_its_digest(cli, repo_copy: Path) -> None:
    run = cli("integration", "submit", str(EXAMPLE), "--yes", "--json", root=repo_copy)
    report = json.loads(run.out)
    assert report["files"] == ["integrations/calsync.yaml", "integrations/calsync.review.yaml"]
    assert report["review"]["pending"] == ["human security review of the image's code and data handling"]
    assert (repo_copy / "integrations" / "calsync.yaml").read_bytes() == EXAMPLE.read_bytes()
    record = yaml.safe_load((repo_copy / "integrations" / "calsync.review.yaml").read_text())
    from integrations.spec import load_integration

    assert record["state"] == "submitted"
    assert record["automated"]["digest"] == load_integration(EXAMPLE).digest()
    assert record["approval"] is None


def test_digest_follows_meaning_not_layout(tmp_path: Path) -> None:
    from integrations.spec import load_integration

    doc = yaml.safe_load(EXAMPLE.read_text())
    reordered = tmp_path / "a.yaml"
    reordered.write_text("# a comment\n" + yaml.safe_dump(dict(reversed(list(doc.items())))))
    changed = integration_file(tmp_path, "b.yaml", description="Something else.")
    assert load_integration(reordered).digest() == load_integration(EXAMPLE).digest()
    assert load_integration(changed).digest() != load_integration(EXAMPLE).digest()


@pytest.mark.parametrize("command", ["submit", "approve", "publish", "suspend", "retire", "status"])
def test_every_command_has_help_with_an_example_and_json(cli, command: str) -> None:
    run = cli("integration", command, "--help")
    assert "Example: platformctl integration " in run.out
    assert "--json" in run.out


def test_a_developer_has_one_country_across_its_integrations(cli, repo_copy: Path, tmp_path: Path) -> None:
    """A developer's country decides its home region (where its DEVELOPERS row is written and the payouts job pays
    it), its payout currency and its one Stripe account: a second integration naming another country would put a
    row claiming the developer in a second region's warehouse, and two regions would state the same
    `payout:developer:<id>:<period>`. The review refuses it; the developer's other specs are named."""
    cli("integration", "submit", str(EXAMPLE), "--yes", root=repo_copy)
    other = integration_file(tmp_path, id="calsync-us", regions=["us-east"], developer={**DEVELOPER, "country": "US"})
    before = tree_snapshot(repo_copy)
    run = cli("integration", "submit", str(other), "--yes", code=2, root=repo_copy)
    assert f"{other}: developer.country: US: " in run.err, run.err
    assert "calsync (DE)" in run.err, run.err
    assert tree_snapshot(repo_copy) == before
    # The same developer in the same country is welcome.
    same = integration_file(tmp_path, name="same.yaml", id="calsync-eu")
    cli("integration", "submit", str(same), "--yes", root=repo_copy)
    assert (repo_copy / "integrations" / "calsync-eu.yaml").is_file()
