"""Numbers that need an address, on a partner's first deploy: the address is created in the subaccount the same
update creates (from the spec), and the number is bought with it. The real `twilio` client against the loopback fake
of Twilio's REST API (tests/components/twilio_fake.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.twilio_resources import (
    TwilioAddressProvider,
    TwilioError,
    TwilioNumberProvider,
    TwilioSubaccountProvider,
)
from partners.telephony import NumberRequest
from tests.components.test_twilio_resources import slot, subaccount, twilio  # noqa: F401 - the fixture
from tests.components.twilio_fake import FakeTwilio

ADDRESS = {
    "customer_name": "Voz de las Pampas S.A.",
    "street": "Avenida Paulista 1000",
    "city": "São Paulo",
    "region": "SP",
    "postal_code": "01310-100",
}


def address_props(sub: str, **overrides: Any) -> dict[str, Any]:
    return {
        "partner_id": "pampas-voz",
        "subaccount_sid": sub,
        "iso_country": "BR",
        "friendly_name": "pctl:pampas-voz:BR:toll_free:0",
        **ADDRESS,
        **overrides,
    }


def test_a_number_that_needs_an_address_is_bought_with_one_created_in_the_new_subaccount(twilio: FakeTwilio) -> None:  # noqa: F811
    twilio.offer("BR", "toll_free", "+558000000001")
    twilio.address_required.add(("BR", "toll_free"))
    sub = subaccount(twilio)
    address = TwilioAddressProvider().create(address_props(sub))
    stored = twilio.addresses[address.id]
    assert stored["account_sid"] == sub and stored["iso_country"] == "BR"
    assert stored["customer_name"] == "Voz de las Pampas S.A." and stored["city"] == "São Paulo"
    number = TwilioNumberProvider().create(slot(sub, address_sid=address.id))
    assert twilio.numbers[number.id]["address_sid"] == address.id
    # A rerun after a crash adopts the address instead of creating a second one.
    assert TwilioAddressProvider().create(address_props(sub)).id == address.id
    assert len(twilio.addresses) == 1


def test_without_the_address_twilio_refuses_the_purchase(twilio: FakeTwilio) -> None:  # noqa: F811
    """What happened before: the spec could only name an AD... SID in a subaccount that did not exist yet."""
    twilio.offer("BR", "toll_free", "+558000000001")
    twilio.address_required.add(("BR", "toll_free"))
    sub = subaccount(twilio)
    with pytest.raises(TwilioError, match=r"error 21631: .*Phone Number Requires an Address"):
        TwilioNumberProvider().create(slot(sub))
    assert twilio.numbers == {}


def test_an_address_of_another_account_does_not_count(twilio: FakeTwilio) -> None:  # noqa: F811
    twilio.offer("BR", "toll_free", "+558000000001")
    twilio.address_required.add(("BR", "toll_free"))
    other = TwilioSubaccountProvider().create({"partner_id": "other", "friendly_name": "pctl:other"}).id
    foreign = TwilioAddressProvider().create(address_props(other, partner_id="other"))
    sub = subaccount(twilio)
    with pytest.raises(TwilioError, match="21631"):
        TwilioNumberProvider().create(slot(sub, address_sid=foreign.id))


def test_address_diff_updates_fields_and_replaces_on_country_or_account() -> None:
    provider = TwilioAddressProvider()
    old = address_props("AC" + "1" * 32)
    assert provider.diff("AD1", old, {**old, "street": "Rua Augusta 1"}).replaces == []
    assert provider.diff("AD1", old, {**old, "street": "Rua Augusta 1"}).changes
    assert provider.diff("AD1", old, {**old, "iso_country": "AR"}).replaces == ["iso_country"]
    assert not provider.diff("AD1", old, dict(old)).changes


def test_the_spec_takes_an_address_or_an_address_sid_not_both() -> None:
    NumberRequest(country="BR", type="toll_free", address=ADDRESS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        NumberRequest(country="BR", type="toll_free", address=ADDRESS, address_sid="AD" + "0" * 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="postal_code"):
        NumberRequest(country="BR", type="toll_free", address={**ADDRESS, "postal_code": "<script>"})  # type: ignore[arg-type]


def test_the_partner_plan_creates_the_address_before_the_number(cli, repo_copy: Path, plan_in, tmp_path: Path) -> None:
    from tests.cli.test_telephony import EXAMPLE

    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["telephony"] = {"numbers": [{"country": "BR", "type": "toll_free", "address": ADDRESS}]}
    spec = tmp_path / "pampas-voz.yaml"
    spec.write_text(yaml.safe_dump(doc, allow_unicode=True))
    cli("onboard-partner", str(spec), "--no-apply", root=repo_copy)
    plan = plan_in(repo_copy, "partner-pampas-voz")
    stack = "partner-pampas-voz"
    by_name = {r.name: r for r in plan.resources(stack) if r.type.startswith("pulumi-python:dynamic/twilio:")}
    address = by_name["tenant-telephony-address-br-toll-free-0"]
    number = by_name["tenant-telephony-number-br-toll-free-0"]
    subaccount_urn = by_name["tenant-telephony-subaccount"].urn
    assert address.inputs["iso_country"] == "BR" and address.inputs["customer_name"] == ADDRESS["customer_name"]
    assert address.property_dependencies["subaccount_sid"] == [subaccount_urn]
    assert number.property_dependencies["address_sid"] == [address.urn]
    assert number.inputs["bundle_required"] is False  # regions/telephony.yaml: BR toll-free bundle unstated


def test_a_slot_whose_bundle_is_not_accepted_waits_and_is_bought_once_it_is(twilio: FakeTwilio) -> None:  # noqa: F811
    twilio.offer("BR", "toll_free", "+558000000001")
    sub = subaccount(twilio)
    bundle = twilio.add_bundle(sub, "pending-review")
    provider = TwilioNumberProvider()
    waiting = provider.create(slot(sub, bundle_sid=bundle))
    assert waiting.id == "waiting:pctl:pampas-voz:BR:toll_free:0"
    assert waiting.outs is not None and waiting.outs["status"] == "waiting"
    assert waiting.outs["waiting_for"] == f"regulatory bundle {bundle} is pending-review"
    assert twilio.purchases() == [] and twilio.numbers == {}
    # The next `up` retries (replace: a bought number has a new id); reading or deleting a waiting slot calls nothing.
    assert "status" in (provider.diff(waiting.id, waiting.outs, slot(sub, bundle_sid=bundle)).replaces or [])
    assert provider.read(waiting.id, waiting.outs).id == waiting.id
    requests = len(twilio.requests)
    provider.delete(waiting.id, waiting.outs)
    assert len(twilio.requests) == requests

    twilio.bundles[bundle]["status"] = "twilio-approved"
    bought = provider.create(slot(sub, bundle_sid=bundle))
    assert bought.outs is not None and bought.outs["status"] == "active" and bought.outs["waiting_for"] == ""
    assert twilio.numbers[bought.id]["bundle_sid"] == bundle
    assert not provider.diff(bought.id, bought.outs, slot(sub, bundle_sid=bundle)).changes


def test_the_bundle_is_read_as_the_subaccount_not_the_main_account(twilio: FakeTwilio) -> None:  # noqa: F811
    """A bundle filed in the main account is not the subaccount's: the slot waits, naming why."""
    twilio.offer("BR", "toll_free", "+558000000001")
    sub = subaccount(twilio)
    foreign = twilio.add_bundle(twilio.account_sid, "twilio-approved")
    waiting = TwilioNumberProvider().create(slot(sub, bundle_sid=foreign))
    assert waiting.outs is not None and waiting.outs["waiting_for"] == f"regulatory bundle {foreign} is missing"
    rejected = twilio.add_bundle(sub, "twilio-rejected")
    again = TwilioNumberProvider().create(slot(sub, bundle_sid=rejected, index=1, friendly_name="pctl:x:BR:t:1"))
    assert (
        again.outs is not None
        and again.outs["waiting_for"]
        == f"regulatory bundle {rejected} is twilio-rejected; fix the bundle data in the spec (the next `up` files "
        "it again) or in the subaccount"
    )
    assert twilio.purchases() == []


def test_a_slot_that_needs_a_bundle_the_new_subaccount_cannot_have_yet_waits(twilio: FakeTwilio) -> None:  # noqa: F811
    """The first deploy of a partner with MX local numbers: the subaccount is new, so no bundle can be named yet;
    the slot waits (the update succeeds) instead of Twilio refusing the purchase and failing the whole `up`."""
    twilio.offer("BR", "toll_free", "+558000000001")
    sub = subaccount(twilio)
    waiting = TwilioNumberProvider().create(slot(sub, bundle_required=True))
    assert waiting.outs is not None and waiting.outs["status"] == "waiting"
    assert "need a regulatory bundle: give the holder's data in the spec (bundle" in waiting.outs["waiting_for"]
    assert f"or file one in subaccount {sub} and name it (bundle_sid)" in waiting.outs["waiting_for"]
    assert twilio.purchases() == []
