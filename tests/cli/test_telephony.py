"""Telephony through the CLI: onboarding with numbers, refusals naming the field, `platformctl numbers`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, tree_snapshot

EXAMPLE = ROOT / "partners" / "examples" / "pampas-voz.yaml"


def with_numbers(tmp_path: Path, numbers: list[dict[str, Any]], **changes: Any) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc.update(changes)
    doc["telephony"] = {"numbers": numbers}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_onboarding_pampas_voz_plans_a_subaccount_and_its_numbers(cli, repo_copy: Path) -> None:
    before = tree_snapshot(repo_copy)
    run = cli("onboard-partner", str(EXAMPLE), "--dry-run", root=repo_copy)
    assert "tenant-telephony-subaccount" in run.out
    for slot in ("br-toll-free-0", "br-toll-free-1", "ar-toll-free-0", "cl-toll-free-0"):
        assert f"tenant-telephony-number-{slot}" in run.out
    assert tree_snapshot(repo_copy) == before


@pytest.mark.parametrize(
    ("numbers", "changes", "field", "message"),
    [
        ([{"country": "MX", "type": "local"}], {}, "telephony.numbers.0.country", "not a country the partner serves"),
        (
            [
                {"country": "BR", "type": "toll_free"},
                {"country": "AR", "type": "toll_free"},
                {"country": "CL", "type": "local"},
            ],
            {},
            "telephony.numbers.2.type",
            "CL does not offer local numbers; offered: toll_free",
        ),
        (
            [{"country": "CO", "type": "toll_free"}],
            {"countries": ["BR", "CO"]},
            "telephony.numbers.0.country",
            "CO is not launched in sa-east",
        ),
        ([{"country": "BR", "type": "landline"}], {}, "telephony.numbers.0.type", "Input should be"),
        ([{"country": "BR", "type": "toll_free", "count": 0}], {}, "telephony.numbers.0.count", "greater than"),
        ([{"country": "BR", "type": "toll_free", "count": 20}] * 6, {}, "telephony", "at most 100 per partner"),
        (
            [{"country": "BR", "type": "toll_free", "locality": "<script>"}],
            {},
            "telephony.numbers.0.locality",
            "place name",
        ),
        (
            [{"country": "BR", "type": "toll_free", "area_code": "11; rm"}],
            {},
            "telephony.numbers.0.area_code",
            "pattern",
        ),
        (
            [{"country": "BR", "type": "toll_free", "bundle_sid": "BU../../x"}],
            {},
            "telephony.numbers.0.bundle_sid",
            "pattern",
        ),
        (
            [{"country": "BR", "type": "toll_free", "voice_url": "https://evil.example"}],
            {},
            "telephony.numbers.0.voice_url",
            "unknown field",
        ),
        ([{"country": False, "type": "toll_free"}], {}, "telephony.numbers.0.country", "read as a boolean"),
    ],
)
def test_bad_telephony_is_exit_2_naming_the_field(
    cli, repo_copy: Path, tmp_path: Path, numbers: list, changes: dict, field: str, message: str
) -> None:
    spec = with_numbers(tmp_path, numbers, **changes)
    before = tree_snapshot(repo_copy)
    for command in (["onboard-partner", str(spec), "--no-apply"], ["validate", str(spec)]):
        run = cli(*command, code=2, root=repo_copy)
        assert f"{field}:" in run.err and message in run.err, run.err
    assert tree_snapshot(repo_copy) == before


def test_a_country_the_catalog_cannot_cite_offers_nothing(cli, repo_copy: Path, tmp_path: Path) -> None:
    stack = repo_copy / "stacks" / "Pulumi.region-sa-east.yaml"
    stack.write_text(stack.read_text() + "  - CO\n")
    spec = with_numbers(tmp_path, [{"country": "CO", "type": "local"}], countries=["BR", "CO"])
    run = cli("validate", str(spec), code=2, root=repo_copy)
    assert "telephony.numbers.0.country: no Twilio numbers are offered in CO" in run.err


def test_a_requirement_the_spec_does_not_meet_is_a_warning(cli, repo_copy: Path, tmp_path: Path) -> None:
    stack = repo_copy / "stacks" / "Pulumi.region-us-east.yaml"
    doc = yaml.safe_load(stack.read_text())
    launched = doc["config"].get("platform:launchedCountries") or []
    doc["config"]["platform:launchedCountries"] = sorted({*launched, "MX"})
    stack.write_text(yaml.safe_dump(doc))
    spec = with_numbers(
        tmp_path,
        [{"country": "MX", "type": "local"}],
        home_region="us-east",
        countries=["MX"],
        billing={"currency": "MXN", "payout_method": "stripe_connect"},
    )
    run = cli("validate", str(spec), root=repo_copy)
    assert "telephony.numbers.0.address: MX local numbers need an address (locality)" in run.err
    assert "telephony.numbers.0.bundle: MX local numbers need an approved regulatory bundle" in run.err


def test_numbers_lists_the_planned_slots(cli, repo_copy: Path) -> None:
    assert "no numbers" in cli("numbers", root=repo_copy).out
    cli("onboard-partner", str(EXAMPLE), "--no-apply", root=repo_copy)
    rows = json.loads(cli("numbers", "pampas-voz", "--json", root=repo_copy).out)
    assert [(r["country"], r["type"], r["slot"]) for r in rows] == [
        ("BR", "toll_free", "br-toll-free-0"),
        ("BR", "toll_free", "br-toll-free-1"),
        ("AR", "toll_free", "ar-toll-free-0"),
        ("CL", "toll_free", "cl-toll-free-0"),
    ]
    assert {r["phone_number"] for r in rows} == {"[unknown] until applied"}
    assert rows[0]["friendly_name"] == "pctl:pampas-voz:BR:toll_free:0" and rows[0]["subaccount"] == "pctl:pampas-voz"
    assert "pctl:pampas-voz:CL:toll_free:0" in cli("numbers", root=repo_copy).out


@pytest.mark.parametrize("partner", ["nobody", "../../etc/passwd", "ACME"])
def test_numbers_of_an_unknown_or_hostile_partner_exits_2(cli, repo_copy: Path, partner: str) -> None:
    cli("numbers", partner, code=2, root=repo_copy)


def test_offboarding_says_what_happens_to_the_numbers(cli, repo_copy: Path) -> None:
    cli("onboard-partner", str(EXAMPLE), "--no-apply", root=repo_copy)
    kept = cli("offboard-partner", "pampas-voz", "--dry-run", root=repo_copy)
    assert "4 Twilio number(s) and Twilio subaccount are kept" in kept.out
    released = cli("offboard-partner", "pampas-voz", "--release-numbers", "--no-apply", root=repo_copy)
    assert "released and its Twilio subaccount closed" in released.out
    config = yaml.safe_load((repo_copy / "stacks" / "Pulumi.partner-pampas-voz.yaml").read_text())["config"]
    assert config["platform:releaseNumbers"] is True


def test_owned_numbers_come_from_the_deployed_stack(cli, repo_copy: Path, monkeypatch) -> None:
    from types import SimpleNamespace

    import platformctl.engine as engine

    cli("onboard-partner", str(EXAMPLE), "--no-apply", root=repo_copy)
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    assert "Pulumi CLI is not on PATH" in cli("numbers", "pampas-voz", "--owned", code=1, root=repo_copy).err

    held = [{"slot": "br-toll-free-0", "phone_number": "+558001234567"}]

    class Automation:  # the Automation API seam: a deployed stack's outputs
        def LocalWorkspaceOptions(self, **kwargs):  # noqa: N802 - mirrors the API
            return SimpleNamespace(**kwargs)

        def select_stack(self, **kwargs):
            assert kwargs["stack_name"] == "partner-pampas-voz"
            return SimpleNamespace(outputs=lambda: {"telephony_numbers": SimpleNamespace(value=held)})

    monkeypatch.setattr(engine, "_automation", lambda: Automation())
    monkeypatch.setattr(engine.shutil, "which", lambda name: "/opt/pulumi/bin/pulumi")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-passphrase")
    rows = json.loads(cli("numbers", "pampas-voz", "--owned", "--json", root=repo_copy).out)
    assert {r["slot"]: r["phone_number"] for r in rows}["br-toll-free-0"] == "+558001234567"
    assert {r["slot"]: r["status"] for r in rows}["br-toll-free-0"] == "active"

    # A slot whose regulatory bundle Twilio has not accepted yet: shown waiting, with the reason.
    held.append(
        {
            "slot": "br-toll-free-1",
            "phone_number": "",
            "status": "waiting",
            "waiting_for": "regulatory bundle BU0123 is pending-review",
        }
    )
    rows = json.loads(cli("numbers", "pampas-voz", "--owned", "--json", root=repo_copy).out)
    waiting = {r["slot"]: r for r in rows}["br-toll-free-1"]
    assert waiting["status"] == "waiting: regulatory bundle BU0123 is pending-review"
    assert waiting["phone_number"] == "not bought"
    table = cli("numbers", "pampas-voz", "--owned", root=repo_copy).out
    assert "waiting: regulatory bundle BU0123 is pending-review" in table
    assert {r["slot"]: r["phone_number"] for r in rows}["cl-toll-free-0"] == "not bought"
