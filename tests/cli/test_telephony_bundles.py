"""The spec's `bundle:` end-user data (a regulatory bundle filed in the partner's new subaccount): checked against the
country's regulation in regions/telephony.yaml, hostile values refused naming the file and field, exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.test_telephony import with_numbers
from tests.conftest import tree_snapshot

ADDRESS = {
    "customer_name": "Lucía Fernández",
    "street": "Avenida Reforma 222",
    "city": "Ciudad de México",
    "region": "CDMX",
    "postal_code": "06600",
}
BUNDLE: dict[str, Any] = {
    "end_user_type": "individual",
    "email": "numbers@pampas.example",
    "end_user": {"first_name": "Lucía", "last_name": "Fernández"},
    "documents": [
        {"proves": "identity", "type": "government_issued_document", "attributes": {"document_number": "X123"}},
        {"proves": "address", "sid": "RD" + "0" * 32},
    ],
}


def mx_spec(repo: Path, tmp_path: Path, request: dict[str, Any]) -> Path:
    stack = repo / "stacks" / "Pulumi.region-us-east.yaml"
    doc = yaml.safe_load(stack.read_text())
    launched = doc["config"].get("platform:launchedCountries") or []
    doc["config"]["platform:launchedCountries"] = sorted({*launched, "MX"})
    stack.write_text(yaml.safe_dump(doc))
    return with_numbers(
        tmp_path,
        [{"country": "MX", "type": "local", **request}],
        home_region="us-east",
        countries=["MX"],
        billing={"currency": "MXN", "payout_method": "stripe_connect"},
    )


def test_a_complete_bundle_validates_without_the_bundle_warning(cli, repo_copy: Path, tmp_path: Path) -> None:
    spec = mx_spec(repo_copy, tmp_path, {"address": ADDRESS, "bundle": BUNDLE})
    run = cli("validate", str(spec), root=repo_copy)
    assert "regulatory bundle" not in run.err and "need an address" not in run.err


@pytest.mark.parametrize(
    ("bundle", "extra", "field", "message"),
    [
        ({**BUNDLE, "end_user": {"first_name": "Lucía"}}, {}, "bundle.end_user.last_name", "MX regulation"),
        ({**BUNDLE, "documents": BUNDLE["documents"][:1]}, {}, "bundle.documents", "proves address"),
        ({**BUNDLE, "end_user_type": "robot"}, {}, "bundle.end_user_type", "individual"),
        (BUNDLE, {"address": None}, "bundle", "proof of address"),
    ],
)
def test_a_bundle_the_regulation_would_refuse_is_exit_2(
    cli, repo_copy: Path, tmp_path: Path, bundle: dict, extra: dict, field: str, message: str
) -> None:
    request = {"address": ADDRESS, "bundle": bundle, **extra}
    spec = mx_spec(repo_copy, tmp_path, {k: v for k, v in request.items() if v is not None})
    run = cli("validate", str(spec), code=2, root=repo_copy)
    assert f"telephony.numbers.0.{field}:" in run.err and message in run.err, run.err


@pytest.mark.parametrize(
    ("bundle", "extra", "field", "message"),
    [
        ({**BUNDLE, "end_user": {"first_name": "<script>alert(1)</script>", "last_name": "X"}}, {}, "first_name", ""),
        ({**BUNDLE, "end_user": {"first_name": "{{ secrets }}", "last_name": "X"}}, {}, "first_name", ""),
        ({**BUNDLE, "end_user": {"first_name": "L" * 100_000, "last_name": "X"}}, {}, "first_name", "at most 100"),
        ({**BUNDLE, "end_user": {"first_name": 12345, "last_name": "X"}}, {}, "first_name", "valid string"),
        ({**BUNDLE, "end_user": {"First Name!": "L"}}, {}, "end_user.First Name!", ""),
        ({**BUNDLE, "email": "a@b.example\nBcc: x@y.example"}, {}, "bundle.email", ""),
        ({**BUNDLE, "documents": [{"proves": "identity", "type": "../../x"}]}, {}, "documents.0.type", ""),
        ({**BUNDLE, "documents": [{"proves": "identity", "sid": "RD../x"}]}, {}, "documents.0.sid", ""),
        ({**BUNDLE, "documents": [{"proves": "identity"}]}, {}, "documents.0", "not both"),
        ({**BUNDLE, "documents": [BUNDLE["documents"][0]] * 9}, {}, "bundle.documents", "at most 8"),
        ({**BUNDLE, "regulation_url": "https://evil.example"}, {}, "bundle.regulation_url", "unknown field"),
        (BUNDLE, {"bundle_sid": "BU" + "0" * 32}, "telephony.numbers.0", "not both"),
    ],
)
def test_hostile_bundle_data_is_refused_naming_file_and_field(
    cli, repo_copy: Path, tmp_path: Path, bundle: dict, extra: dict, field: str, message: str
) -> None:
    spec = mx_spec(repo_copy, tmp_path, {"address": ADDRESS, "bundle": bundle, **extra})
    before = tree_snapshot(repo_copy)
    for command in (["onboard-partner", str(spec), "--no-apply"], ["validate", str(spec)]):
        run = cli(*command, code=2, root=repo_copy)
        assert str(spec) in run.err and field in run.err and message in run.err, run.err
        assert "Traceback" not in run.err and "L" * 200 not in run.err
    assert tree_snapshot(repo_copy) == before
