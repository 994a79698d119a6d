"""Regulatory bundles filed on a partner's first deploy: end user, supporting documents, bundle, item assignments and
the submission, all in the new subaccount and as the subaccount. The real `twilio` client against the loopback fake of
Twilio's REST API (tests/components/twilio_fake.py), which models Regulatory Compliance v2 as Twilio documents it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pulumi
import pytest

from components.twilio_resources import (
    TwilioAddressProvider,
    TwilioBundleProvider,
    TwilioError,
    TwilioNumberProvider,
)
from tests.components.test_twilio_addresses import address_props
from tests.components.test_twilio_resources import slot, subaccount, twilio  # noqa: F401 - the fixture
from tests.components.twilio_fake import FakeTwilio

BUNDLE_NAME = "pctl:pampas-voz:MX:local:0:bundle"


def bundle_props(sub: str, address_sid: str | None, **overrides: Any) -> dict[str, Any]:
    return {
        "partner_id": "pampas-voz",
        "subaccount_sid": sub,
        "iso_country": "MX",
        "number_type": "local",
        "end_user_type": "individual",
        "friendly_name": BUNDLE_NAME,
        "email": "numbers@pampas-voz.example",
        "end_user": {"first_name": "Lucía", "last_name": "Fernández"},
        "documents": [
            {
                "proves": "identity",
                "type": "government_issued_document",
                "attributes": {"first_name": "Lucía", "last_name": "Fernández"},
                "sid": None,
            },
            {"proves": "address", "type": "utility", "attributes": {}, "sid": None},
        ],
        "address_sid": address_sid,
        **overrides,
    }


def mx_slot(sub: str, **overrides: Any) -> dict[str, Any]:
    return slot(
        sub,
        country="MX",
        number_type="local",
        friendly_name="pctl:pampas-voz:MX:local:0",
        bundle_required=True,
        **overrides,
    )


def filed(twilio: FakeTwilio) -> tuple[str, str]:  # noqa: F811
    twilio.offer("MX", "local", "+525500000001")
    sub = subaccount(twilio)
    address = TwilioAddressProvider().create(address_props(sub, iso_country="MX", friendly_name="pctl:x:MX:local:0"))
    return sub, address.id


def test_first_up_files_the_bundle_from_the_spec_and_submits_it(twilio: FakeTwilio) -> None:  # noqa: F811
    sub, address = filed(twilio)
    result = TwilioBundleProvider().create(bundle_props(sub, address))
    bundle = twilio.bundles[result.id]
    assert bundle["account_sid"] == sub and bundle["status"] == "pending-review"
    assert (bundle["iso_country"], bundle["number_type"], bundle["end_user_type"]) == ("MX", "local", "individual")
    assert bundle["email"] == "numbers@pampas-voz.example"
    [end_user] = twilio.end_users.values()
    assert end_user["account_sid"] == sub and end_user["type"] == "individual"
    assert end_user["attributes"] == {"first_name": "Lucía", "last_name": "Fernández"}
    documents = sorted(twilio.documents.values(), key=lambda d: d["friendly_name"])
    assert [d["type"] for d in documents] == ["government_issued_document", "utility"]
    assert documents[1]["attributes"] == {"address_sids": [address]} and documents[1]["account_sid"] == sub
    assigned = {item["object_sid"] for item in twilio.assignments[result.id]}
    assert assigned == {end_user["sid"], *(d["sid"] for d in documents), address}
    assert twilio.submissions == [result.id]
    assert result.outs is not None and result.outs["status"] == "pending-review"
    # Every regulatory call authenticated as the subaccount (the master's credentials would see none of it).
    assert twilio.end_users and all(b["account_sid"] == sub for b in twilio.bundles.values())


def test_the_slot_waits_while_the_filed_bundle_is_reviewed_and_buys_once_accepted(twilio: FakeTwilio) -> None:  # noqa: F811
    sub, address = filed(twilio)
    bundle = TwilioBundleProvider().create(bundle_props(sub, address)).id
    numbers = TwilioNumberProvider()
    waiting = numbers.create(mx_slot(sub, address_sid=address, bundle_sid=bundle))
    assert waiting.outs is not None and waiting.outs["status"] == "waiting"
    assert waiting.outs["waiting_for"] == f"regulatory bundle {bundle} is pending-review"
    assert twilio.purchases() == []

    twilio.review(bundle, accept=True)
    # The next `up`: the bundle is left alone (never resubmitted), the slot is bought with it.
    again = TwilioBundleProvider().create(bundle_props(sub, address))
    assert again.id == bundle and twilio.submissions == [bundle]
    bought = numbers.create(mx_slot(sub, address_sid=address, bundle_sid=bundle))
    assert bought.outs is not None and bought.outs["status"] == "active"
    assert twilio.numbers[bought.id]["bundle_sid"] == bundle and twilio.numbers[bought.id]["address_sid"] == address


def test_a_crash_between_create_and_submit_is_adopted_not_duplicated(twilio: FakeTwilio) -> None:  # noqa: F811
    sub, address = filed(twilio)

    class CrashBeforeSubmit(TwilioBundleProvider):
        """Twilio holds the end user, one document, the draft bundle and one assignment when the run dies."""

        def _file(self, compliance: Any, props: dict[str, Any], bundle: Any) -> Any:
            end_user = self._end_user(compliance, props)
            self._document(compliance, props, 0, props["documents"][0])
            created = compliance.bundles.create(
                friendly_name=props["friendly_name"],
                email=props["email"],
                iso_country="MX",
                number_type="local",
                end_user_type="individual",
            )
            compliance.bundles(created.sid).item_assignments.create(object_sid=end_user)
            raise RuntimeError("the Pulumi host died")

    with pytest.raises(TwilioError, match="the Pulumi host died"):
        CrashBeforeSubmit().create(bundle_props(sub, address))
    [draft] = twilio.bundles.values()
    assert draft["status"] == "draft" and twilio.submissions == []

    result = TwilioBundleProvider().create(bundle_props(sub, address))
    assert result.id == draft["sid"] and len(twilio.bundles) == 1
    assert len(twilio.end_users) == 1 and len(twilio.documents) == 2
    objects = [item["object_sid"] for item in twilio.assignments[result.id]]
    assert len(objects) == len(set(objects)) == 4  # end user, two documents, address: each once
    assert twilio.bundles[result.id]["status"] == "pending-review" and twilio.submissions == [result.id]


def test_a_rejected_bundle_shows_its_reason_and_is_refiled_when_the_spec_changes(twilio: FakeTwilio) -> None:  # noqa: F811
    sub, address = filed(twilio)
    provider = TwilioBundleProvider()
    created = provider.create(bundle_props(sub, address))
    twilio.review(created.id, accept=False, failures=("The document is not legible.",))
    waiting = TwilioNumberProvider().create(mx_slot(sub, address_sid=address, bundle_sid=created.id))
    assert waiting.outs is not None
    assert waiting.outs["waiting_for"].startswith(
        f"regulatory bundle {created.id} is twilio-rejected (The document is not legible.)"
    )
    # Same data: nothing to refile. New data: the end user is updated and the bundle submitted again.
    assert created.outs is not None
    olds = {**created.outs, "status": "twilio-rejected"}
    assert not provider.diff(created.id, olds, bundle_props(sub, address)).changes
    news = bundle_props(sub, address, end_user={"first_name": "Lucía", "last_name": "Fernández Ruiz"})
    assert provider.diff(created.id, olds, news).replaces == []
    updated = provider.update(created.id, olds, news)
    assert updated.outs is not None and updated.outs["status"] == "pending-review"
    assert twilio.submissions == [created.id, created.id]
    [end_user] = twilio.end_users.values()
    assert end_user["attributes"]["last_name"] == "Fernández Ruiz"


def test_an_accepted_bundle_is_never_resubmitted(twilio: FakeTwilio) -> None:  # noqa: F811
    sub, address = filed(twilio)
    provider = TwilioBundleProvider()
    created = provider.create(bundle_props(sub, address))
    twilio.review(created.id, accept=True)
    news = bundle_props(sub, address, email="other@pampas-voz.example")
    assert created.outs is not None
    updated = provider.update(created.id, created.outs, news)
    assert updated.outs is not None and updated.outs["status"] == "twilio-approved"
    assert twilio.submissions == [created.id] and twilio.bundles[created.id]["email"] == "numbers@pampas-voz.example"


def test_the_bundle_is_filed_as_the_subaccount_and_another_accounts_objects_are_not_found(twilio: FakeTwilio) -> None:  # noqa: F811
    sub, address = filed(twilio)
    other_sub, _token = twilio.add_subaccount("pctl:other")
    other = TwilioBundleProvider().create(
        bundle_props(
            other_sub,
            None,
            end_user={"business_name": "Other"},
            end_user_type="business",
            documents=[{"sid": None, "type": "business_registration", "attributes": {"business_name": "Other"}}],
        )
    )
    foreign_document = next(iter(twilio.documents))
    mine = TwilioBundleProvider().create(bundle_props(sub, address))
    assert mine.id != other.id  # the same friendly name in another subaccount is not adopted
    assert twilio.bundles[mine.id]["account_sid"] == sub and twilio.bundles[other.id]["account_sid"] == other_sub
    assert TwilioBundleProvider().read(other.id, bundle_props(sub, address)).id is None  # 404 as the subaccount
    foreign = [{"sid": foreign_document, "type": "", "attributes": {}}]
    with pytest.raises(TwilioError, match=f"ObjectSid {foreign_document} is not an object of this account"):
        TwilioBundleProvider().create(bundle_props(sub, address, friendly_name=BUNDLE_NAME + ":1", documents=foreign))


def test_the_main_accounts_credentials_do_not_reach_a_subaccounts_bundle(twilio: FakeTwilio) -> None:  # noqa: F811
    """Why the provider fetches the subaccount's token: Numbers v2 answers the main account 404 for it."""
    from components.twilio_api import twilio_client

    sub, address = filed(twilio)
    bundle = TwilioBundleProvider().create(bundle_props(sub, address)).id
    with pytest.raises(Exception, match=r"404|not found"):
        twilio_client().numbers.v2.regulatory_compliance.bundles(bundle).fetch()


class _Registered(pulumi.runtime.Mocks):
    """Records each resource's inputs; a dynamic resource's `sid` output is `<name>-sid`, as Twilio would fill it."""

    def __init__(self) -> None:
        self.inputs: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.inputs[args.name] = dict(args.inputs)
        return f"{args.name}-id", {**args.inputs, "sid": f"{args.name}-sid"}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


def test_partner_telephony_files_one_bundle_per_entry_and_the_numbers_wait_on_it() -> None:
    """The component under the SDK's mocks: an MX local entry of two numbers with `bundle:` end-user data registers
    one twilio:Bundle in the new subaccount (with the first slot's address), and both numbers carry its SID."""
    from components.partner_telephony import PartnerTelephony, PartnerTelephonyArgs
    from partners.telephony import NumberRequest, NumberSlot
    from tests.cli.test_telephony_bundles import ADDRESS, BUNDLE

    request = NumberRequest.model_validate(
        {"country": "MX", "type": "local", "count": 2, "address": ADDRESS, "bundle": BUNDLE}
    )
    slots = tuple(NumberSlot("pampas-voz", "MX", "local", index, request) for index in range(2))
    registered = _Registered()
    pulumi.runtime.set_mocks(registered, preview=False)
    try:

        @pulumi.runtime.test
        def build() -> pulumi.Output:
            component = PartnerTelephony(
                "tel",
                PartnerTelephonyArgs(
                    partner_id="pampas-voz",
                    slots=slots,
                    voice_url="https://voice.us-east.example/twilio/voice",
                    status_callback="https://meter.us-east.example/twilio/pampas-voz/status",
                    bundle_required=frozenset(slot.key for slot in slots),
                ),
            )
            return pulumi.Output.from_input(cast(list[dict[str, Any]], component.outputs["telephony_numbers"]))

        build()
    finally:
        pulumi.runtime.settings.reset_options()
    bundles = [name for name in registered.inputs if name.startswith("tel-bundle-")]
    assert bundles == ["tel-bundle-mx-local-0"]
    bundle = registered.inputs["tel-bundle-mx-local-0"]
    assert bundle["subaccount_sid"] == "tel-subaccount-sid"
    assert bundle["address_sid"] == "tel-address-mx-local-0-sid"
    assert (bundle["iso_country"], bundle["number_type"], bundle["end_user_type"]) == ("MX", "local", "individual")
    assert bundle["friendly_name"] == "pctl:pampas-voz:MX:local:0:bundle"
    assert bundle["end_user"] == {"first_name": "Lucía", "last_name": "Fernández"}
    assert [d["proves"] for d in bundle["documents"]] == ["identity", "address"]
    assert bundle["documents"][1]["sid"] == "RD" + "0" * 32
    for index in range(2):
        number = registered.inputs[f"tel-number-mx-local-{index}"]
        assert number["bundle_sid"] == "tel-bundle-mx-local-0-sid" and number["bundle_required"] is True


class _ProvidersAgainstTheFake(pulumi.runtime.Mocks):
    """Each registered twilio dynamic resource is created by its real provider against the loopback fake, as the
    engine would on an `up` whose state holds nothing yet (every run here starts from empty state: what a crash
    that lost the state looks like, so adoption is what keeps Twilio at one of each)."""

    def __init__(self) -> None:
        from components.twilio_resources import TwilioSubaccountProvider

        self.providers: dict[str, Any] = {
            "pulumi-python:dynamic/twilio:Subaccount": TwilioSubaccountProvider,
            "pulumi-python:dynamic/twilio:Address": TwilioAddressProvider,
            "pulumi-python:dynamic/twilio:Bundle": TwilioBundleProvider,
            "pulumi-python:dynamic/twilio:Number": TwilioNumberProvider,
        }

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        props = {key: value for key, value in args.inputs.items() if key != "__provider"}
        provider = self.providers.get(args.typ)
        if provider is None:
            return f"{args.name}-id", props
        result = provider().create(props)
        return result.id, result.outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


def _up(request: Any) -> list[dict[str, Any]]:
    """One run of PartnerTelephony for an MX local entry, its providers against the fake; the numbers output."""
    from components.partner_telephony import PartnerTelephony, PartnerTelephonyArgs
    from partners.telephony import NumberSlot

    slots = (NumberSlot("pampas-voz", "MX", "local", 0, request),)
    rows: list[dict[str, Any]] = []
    pulumi.runtime.set_mocks(_ProvidersAgainstTheFake(), preview=False)
    try:

        @pulumi.runtime.test
        def build() -> pulumi.Output:
            component = PartnerTelephony(
                "tel",
                PartnerTelephonyArgs(
                    partner_id="pampas-voz",
                    slots=slots,
                    voice_url="https://voice.us-east.example/twilio/voice",
                    status_callback="https://meter.us-east.example/twilio/pampas-voz/status",
                    bundle_required=frozenset({slots[0].key}),
                ),
            )
            numbers = pulumi.Output.from_input(cast(list[dict[str, Any]], component.outputs["telephony_numbers"]))
            return numbers.apply(rows.extend)

        build()
    finally:
        pulumi.runtime.settings.reset_options()
    return rows


def test_first_up_files_and_submits_the_bundle_and_the_slot_waits_then_the_next_up_buys(twilio: FakeTwilio) -> None:  # noqa: F811
    from partners.telephony import NumberRequest
    from tests.cli.test_telephony_bundles import ADDRESS

    twilio.offer("MX", "local", "+525500000001")
    twilio.address_required.add(("MX", "local"))
    request = NumberRequest.model_validate(
        {
            "country": "MX",
            "type": "local",
            "address": ADDRESS,
            "bundle": {
                "end_user_type": "individual",
                "email": "numbers@pampas.example",
                "end_user": {"first_name": "Lucía", "last_name": "Fernández"},
                "documents": [
                    {
                        "proves": "identity",
                        "type": "government_issued_document",
                        "attributes": {"document_number": "X1"},
                    },
                    {"proves": "address", "type": "utility", "attributes": {"business_name": "Lucía Fernández"}},
                ],
            },
        }
    )
    [first] = _up(request)
    [bundle] = twilio.bundles.values()
    assert bundle["status"] == "pending-review" and twilio.submissions == [bundle["sid"]]
    [sub] = [a["sid"] for a in twilio.accounts.values() if a["friendly_name"] == "pctl:pampas-voz"]
    assert bundle["account_sid"] == sub and len(twilio.end_users) == 1 and len(twilio.documents) == 2
    [address] = twilio.addresses.values()
    assert {i["object_sid"] for i in twilio.assignments[bundle["sid"]]} >= {address["sid"]}
    assert first["status"] == "waiting" and first["phone_number"] == ""
    assert first["waiting_for"] == f"regulatory bundle {bundle['sid']} is pending-review"
    assert twilio.purchases() == []

    twilio.review(bundle["sid"], accept=True)
    [second] = _up(request)
    assert second["status"] == "active" and second["phone_number"] == "+525500000001"
    assert len(twilio.bundles) == 1 and twilio.submissions == [bundle["sid"]]  # adopted, never resubmitted
    assert len(twilio.end_users) == 1 and len(twilio.documents) == 2 and len(twilio.addresses) == 1
    [number] = twilio.numbers.values()
    assert number["bundle_sid"] == bundle["sid"] and number["address_sid"] == address["sid"]


def test_the_bundle_provider_pickled_into_state_holds_no_credential(twilio: FakeTwilio) -> None:  # noqa: F811
    """What Pulumi stores as the resource's `__provider`: the provider class, no token (read at run time)."""
    import dill

    sub, address = filed(twilio)
    TwilioBundleProvider().create(bundle_props(sub, address))
    raw = dill.dumps(TwilioBundleProvider(), recurse=True)
    subaccount_token = str(twilio.accounts[sub]["auth_token"])
    assert twilio.auth_token.encode() not in raw and subaccount_token.encode() not in raw


def test_the_partner_plan_files_the_bundle_before_the_numbers(cli, repo_copy: Path, plan_in, tmp_path: Path) -> None:
    """The offline plan of a partner whose MX local numbers carry `bundle:` data: one twilio:Bundle in the new
    subaccount, after the address, and every number of the entry waits on its SID."""
    from tests.cli.test_telephony_bundles import ADDRESS, BUNDLE, mx_spec

    bundle = {**BUNDLE, "documents": [BUNDLE["documents"][0], {"proves": "address", "type": "utility"}]}
    spec = mx_spec(repo_copy, tmp_path, {"count": 2, "address": ADDRESS, "bundle": bundle})
    cli("onboard-partner", str(spec), "--no-apply", root=repo_copy)
    stack = "partner-pampas-voz"
    plan = plan_in(repo_copy, stack)
    by_name = {r.name: r for r in plan.resources(stack) if r.type.startswith("pulumi-python:dynamic/twilio:")}
    [filed_bundle] = [r for r in by_name.values() if r.type == "pulumi-python:dynamic/twilio:Bundle"]
    assert filed_bundle.name == "tenant-telephony-bundle-mx-local-0"
    assert filed_bundle.inputs["friendly_name"] == "pctl:pampas-voz:MX:local:0:bundle"
    assert filed_bundle.inputs["end_user"] == {"first_name": "Lucía", "last_name": "Fernández"}
    assert filed_bundle.property_dependencies["subaccount_sid"] == [by_name["tenant-telephony-subaccount"].urn]
    assert filed_bundle.property_dependencies["address_sid"] == [by_name["tenant-telephony-address-mx-local-0"].urn]
    assert filed_bundle.retain_on_delete
    for index in range(2):
        number = by_name[f"tenant-telephony-number-mx-local-{index}"]
        assert number.property_dependencies["bundle_sid"] == [filed_bundle.urn]
        assert number.inputs["bundle_required"] is True  # regions/telephony.yaml: MX local needs a bundle
