"""`platformctl billing connect-developer`: a developer's Stripe Connect account, opened once in its country under the
right service agreement, recorded in its integrations' stack files through the change path; refusals exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import tree_snapshot
from tests.integrations.conftest import integration_file
from tests.services.stripe_fake import TEST_KEY, FakeStripe

INTEGRATIONS = Path(__file__).resolve().parents[2] / "integrations" / "examples"


def _publish(cli: Callable[..., Any], repo: Path, spec: Path, integration_id: str) -> None:
    cli("integration", "submit", str(spec), "--yes", root=repo)
    cli("integration", "approve", integration_id, "--reviewer", "Dana Reviewer", root=repo)
    cli("integration", "publish", integration_id, "--no-apply", root=repo)


def test_connect_developer_opens_once_and_records_in_every_integration_stack(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, tmp_path: Path
) -> None:
    _publish(cli, repo_copy, INTEGRATIONS / "calsync.yaml", "calsync")
    second = integration_file(tmp_path, id="calnotes")  # the same developer's second integration
    _publish(cli, repo_copy, second, "calnotes")
    result = json.loads(cli("billing", "connect-developer", "tempo-labs", "--yes", "--json", root=repo_copy).out)
    (account,) = fake.accounts.values()
    # DE is not the platform's country (US): the recipient service agreement, in the developer's payout currency.
    assert (account["country"], account["default_currency"]) == ("DE", "eur")
    assert account["tos_acceptance"]["service_agreement"] == "recipient"
    assert account["metadata"] == {"developer": "tempo-labs"}
    assert ("POST", "/v1/accounts", "account:developer:tempo-labs") in fake.requests
    assert result["account"] == account["id"] and result["created"] is True and result["link"]
    assert result["recorded"] == ["stacks/Pulumi.integration-calnotes.yaml", "stacks/Pulumi.integration-calsync.yaml"]
    for iid in ("calsync", "calnotes"):
        config = yaml.safe_load((repo_copy / f"stacks/Pulumi.integration-{iid}.yaml").read_text())["config"]
        assert config["platform:stripeAccount"] == account["id"]
    # Again: found, nothing written, no second account.
    again = json.loads(cli("billing", "connect-developer", "tempo-labs", "--json", root=repo_copy).out)
    assert (again["account"], again["created"], again["recorded"]) == (account["id"], False, [])
    assert len(fake.accounts) == 1
    # The integration stack's plan carries it to the developer's warehouse row.
    plan_file = tmp_path / "plan.json"
    cli("plan", "integration-calsync", "--json", str(plan_file), root=repo_copy)
    steps = json.loads(plan_file.read_text())["stacks"]["integration-calsync"]["steps"]
    (developer,) = [s for s in steps if s["urn"].endswith("::terms-developer")]
    assert f'"STRIPE_ACCOUNT":"{account["id"]}"' in developer["newState"]["inputs"]["execute"]


@pytest.mark.parametrize(
    ("developer", "field", "reason"),
    [
        ("nobody-here", "arguments: DEVELOPER", "no integration in integrations/ is by 'nobody-here'"),
        ("../etc", "arguments: DEVELOPER", "is not a developer id"),
        ("pulse-data", "integrations/pulse-analytics.yaml: developer.country", "cannot receive Stripe Connect"),
    ],
)
def test_connect_developer_refusals_exit_2_and_write_nothing(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, developer: str, field: str, reason: str
) -> None:
    _publish(cli, repo_copy, INTEGRATIONS / "pulse-analytics.yaml", "pulse-analytics")  # JP: outside cross-border
    before = tree_snapshot(repo_copy)
    run = cli("billing", "connect-developer", developer, "--yes", code=2, root=repo_copy)
    assert field in run.err and reason in run.err, run.err
    assert tree_snapshot(repo_copy) == before and not fake.accounts


def test_a_stack_file_naming_a_partners_account_of_the_same_id_is_refused(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe
) -> None:
    """Partner and developer ids share one pattern: an account whose metadata names *partner* tempo-labs, recorded by
    hand in the developer's stack file, is not developer tempo-labs's account (it would pay the partner)."""
    from services.payouts.stripe_gateway import StripeGateway

    _publish(cli, repo_copy, INTEGRATIONS / "calsync.yaml", "calsync")
    gateway = StripeGateway.from_env({"STRIPE_API_KEY": TEST_KEY, "STRIPE_API_BASE": fake.base})
    partners = gateway.create_account("tempo-labs", "US", "USD", "x@tempo.example")["id"]
    stack_file = repo_copy / "stacks/Pulumi.integration-calsync.yaml"
    stack = yaml.safe_load(stack_file.read_text())
    stack["config"]["platform:stripeAccount"] = partners  # by hand
    stack_file.write_text(yaml.safe_dump(stack))
    before = tree_snapshot(repo_copy)
    run = cli("billing", "connect-developer", "tempo-labs", "--yes", code=2, root=repo_copy)
    assert "stacks/Pulumi.integration-calsync.yaml: config.platform:stripeAccount" in run.err, run.err
    assert f"{partners} is not tempo-labs's Stripe account" in run.err and "metadata developer is None" in run.err
    assert tree_snapshot(repo_copy) == before and len(fake.accounts) == 1
