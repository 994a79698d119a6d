"""PartnerTelephony under the SDK's mocks: the offline plan of a partner with numbers, and the pickled providers."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import dill
import pulumi
import pytest

from scripts.fleet import copy_repo
from tests.conftest import ROOT, Plan

NUMBER = "pulumi-python:dynamic/twilio:Number"
SUBACCOUNT = "pulumi-python:dynamic/twilio:Subaccount"
STACK = "partner-pampas-voz"


def onboard_example(root: Path, extra_config: str = "") -> None:
    shutil.copy2(ROOT / "partners" / "examples" / "pampas-voz.yaml", root / "partners" / "pampas-voz.yaml")
    (root / "stacks" / f"Pulumi.{STACK}.yaml").write_text("config:\n  aws:region: sa-east-1\n" + extra_config)


@pytest.fixture(scope="module")
def pampas(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """The example partner onboarded into a copy of the repository and planned, once for the module (read only: a
    test that plans a variant onboards it into its own `repo_copy`)."""
    from fleet.repo import Repo
    from foundation.stacks import parse_stack_name
    from platformctl.offline.planner import plan_stacks

    root = copy_repo(ROOT, tmp_path_factory.mktemp("pampas") / "repo")
    onboard_example(root)
    return Plan(plan_stacks(Repo(root), [parse_stack_name(STACK)]))


def test_the_plan_holds_a_subaccount_and_one_number_per_slot(pampas: Plan) -> None:
    (sub,) = pampas.resources(STACK, SUBACCOUNT)
    assert sub.inputs["friendly_name"] == "pctl:pampas-voz" and sub.inputs["partner_id"] == "pampas-voz"
    numbers = {r.name: r for r in pampas.resources(STACK, NUMBER)}
    assert sorted(numbers) == [
        "tenant-telephony-number-ar-toll-free-0",
        "tenant-telephony-number-br-toll-free-0",
        "tenant-telephony-number-br-toll-free-1",
        "tenant-telephony-number-cl-toll-free-0",
    ]
    br1 = numbers["tenant-telephony-number-br-toll-free-1"].inputs
    assert (br1["country"], br1["number_type"], br1["index"]) == ("BR", "toll_free", 1)
    assert br1["friendly_name"] == "pctl:pampas-voz:BR:toll_free:1"
    assert br1["voice_url"] == "https://voice.sa-east.voice-platform.example/twilio/voice"
    assert (
        br1["status_callback"] == "https://meter.sa-east.voice-platform.example/twilio/pampas-voz/status#rc=5&rp=all"
    )  # Twilio retries a 503
    assert br1["subaccount_sid"] == "[unknown]"  # only Twilio knows it
    assert all(r.parent.endswith("PartnerTelephony::tenant-telephony") for r in numbers.values())


def test_twilio_only_values_are_unknown_and_the_provider_blob_is_not_shown(pampas: Plan) -> None:
    outputs = pampas.outputs(STACK)
    assert outputs["twilio_subaccount"] == "[unknown]"
    assert [n["phone_number"] for n in outputs["telephony_numbers"]] == ["[unknown]"] * 4
    assert {n["slot"] for n in outputs["telephony_numbers"]} == {
        "br-toll-free-0",
        "br-toll-free-1",
        "ar-toll-free-0",
        "cl-toll-free-0",
    }
    for resource in pampas.resources(STACK, NUMBER) + pampas.resources(STACK, SUBACCOUNT):
        assert resource.inputs["__provider"] == "[provider]"
    preview = pampas.preview_json(STACK)
    assert "[provider]" in preview and "gASV" not in preview  # no base64 pickle in the plan


def test_numbers_are_kept_unless_purged_or_released(pampas: Plan, repo_copy: Path, plan_in) -> None:
    assert all(r.retain_on_delete for r in pampas.resources(STACK, NUMBER) + pampas.resources(STACK, SUBACCOUNT))
    assert pampas.outputs(STACK)["telephony_kept_on_delete"] is True
    for extra in ("  platform:purgeData: true\n", "  platform:releaseNumbers: true\n"):
        onboard_example(repo_copy, extra)
        plan = plan_in(repo_copy, STACK)
        assert not any(r.retain_on_delete for r in plan.resources(STACK, NUMBER) + plan.resources(STACK, SUBACCOUNT))
        assert plan.outputs(STACK)["telephony_kept_on_delete"] is False


def test_an_offboarded_partner_keeps_its_numbers(repo_copy: Path, plan_in) -> None:
    onboard_example(repo_copy, "  platform:offboardedOn: '2026-11-01'\n")
    plan = plan_in(repo_copy, STACK)
    assert len(plan.resources(STACK, NUMBER)) == 4 and plan.resources(STACK, SUBACCOUNT)
    assert not plan.resources(STACK, "kubernetes:core/v1:Namespace")


def test_partners_without_telephony_get_no_subaccount(fleet: Plan) -> None:
    assert not fleet.resources("partner-acme-voice", SUBACCOUNT)


def test_region_exports_the_meter_and_voice_endpoints(fleet: Plan) -> None:
    outputs = fleet.outputs("region-sa-east")
    assert outputs["meter_public_url"] == "https://meter.sa-east.voice-platform.example"
    assert outputs["voice_endpoint_url"] == "https://voice.sa-east.voice-platform.example/twilio/voice"


class _Capture(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.inputs: dict[str, dict] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.inputs[args.name] = dict(args.inputs)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        return {}, []


def test_the_serialized_provider_holds_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `__provider` input Pulumi stores in state, unpickled: a bare provider, even with credentials set."""
    from components.partner_telephony import PartnerTelephony, PartnerTelephonyArgs
    from partners.spec import load_spec
    from partners.telephony import number_slots

    token = "live-token-must-not-leak-42"
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "b" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", token)
    spec = load_spec(ROOT / "partners" / "examples" / "pampas-voz.yaml")
    capture = _Capture()
    pulumi.runtime.set_mocks(capture, preview=False)
    try:

        @pulumi.runtime.test
        def build() -> pulumi.Output:
            component = PartnerTelephony(
                "tel",
                PartnerTelephonyArgs(
                    partner_id=spec.id,
                    slots=tuple(number_slots(spec)),
                    voice_url="https://voice.sa-east.example/twilio/voice",
                    status_callback="https://meter.sa-east.example/twilio/pampas-voz/status",
                ),
            )
            return pulumi.Output.from_input(component.outputs["twilio_subaccount"])

        build()
    finally:
        pulumi.runtime.settings.reset_options()
    blobs = {name: inputs["__provider"] for name, inputs in capture.inputs.items() if "__provider" in inputs}
    assert set(blobs) == {
        "tel-subaccount",
        "tel-number-br-toll-free-0",
        "tel-number-br-toll-free-1",
        "tel-number-ar-toll-free-0",
        "tel-number-cl-toll-free-0",
    }
    for blob in blobs.values():
        assert isinstance(blob, dict) and set(blob) == {pulumi.runtime.rpc._special_sig_key, "value"}  # a Pulumi secret
        raw = base64.b64decode(blob["value"])
        assert token.encode() not in raw and b"TWILIO_AUTH_TOKEN=" not in raw
        provider = dill.loads(raw)
        assert type(provider).__name__ in {"TwilioNumberProvider", "TwilioSubaccountProvider"} and vars(provider) == {}
    assert all(token not in json.dumps(inputs, default=str) for inputs in capture.inputs.values())
