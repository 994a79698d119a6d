"""PartnerTelephony: a partner's Twilio subaccount, one number per slot of its spec's `telephony` section, and the
addresses and regulatory bundles the spec asks to be filed in the subaccount."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.twilio_resources import TwilioAddress, TwilioBundle, TwilioNumber, TwilioSubaccount
from partners.telephony import NumberSlot, subaccount_friendly_name


@dataclass(frozen=True)
class PartnerTelephonyArgs:
    partner_id: str
    """The partner."""
    slots: tuple[NumberSlot, ...]
    """Number slots from the spec (partners.telephony.number_slots)."""
    voice_url: pulumi.Input[str]
    """Where Twilio sends the partner's calls: the home region's voice endpoint through the gateway."""
    status_callback: pulumi.Input[str]
    """The meter's signed callback for the partner: `<meter_public_url>/twilio/<partner-id>/status`."""
    bundle_required: frozenset[str] = frozenset()
    """Keys of the slots whose country and type need a regulatory bundle (regions/telephony.yaml): without one they
    wait instead of failing the purchase."""
    keep_on_delete: bool = True
    """Keep numbers and subaccount when the stack drops them (a partner may come back; numbers are hard to get)."""


class PartnerTelephony(pulumi.ComponentResource):
    def __init__(self, name: str, args: PartnerTelephonyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:partner_telephony:PartnerTelephony", name, None, opts)
        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=args.keep_on_delete)
        subaccount = TwilioSubaccount(
            f"{name}-subaccount", args.partner_id, subaccount_friendly_name(args.partner_id), opts=keep
        )
        numbers = []
        bundles: dict[int, pulumi.Output[str]] = {}  # one bundle per spec entry, filed once for all of its slots
        for slot in args.slots:
            address_sid: pulumi.Input[str] | None = slot.request.address_sid
            if slot.request.address is not None:
                # Created in the new subaccount by this same update; the purchase waits for it (its sid is an input).
                address_sid = TwilioAddress(
                    f"{name}-address-{slot.key}",
                    {
                        "partner_id": slot.partner_id,
                        "subaccount_sid": subaccount.sid,
                        "iso_country": slot.country,
                        "friendly_name": slot.friendly_name,
                        **slot.request.address.model_dump(),
                    },
                    opts=keep,
                ).sid
            bundle_sid: pulumi.Input[str] | None = slot.request.bundle_sid
            if slot.request.bundle is not None:
                entry = id(slot.request)
                if entry not in bundles:
                    # Filed in the new subaccount by this same update and submitted; the number waits (its sid is an
                    # input) and the slot stays waiting until Twilio accepts the bundle.
                    bundle = slot.request.bundle
                    bundles[entry] = TwilioBundle(
                        f"{name}-bundle-{slot.key}",
                        {
                            "partner_id": slot.partner_id,
                            "subaccount_sid": subaccount.sid,
                            "iso_country": slot.country,
                            "number_type": slot.type,
                            "end_user_type": bundle.end_user_type,
                            "friendly_name": f"{slot.friendly_name}:bundle",
                            "email": bundle.email,
                            "end_user": dict(bundle.end_user),
                            "documents": [document.model_dump(exclude_none=True) for document in bundle.documents],
                            "address_sid": address_sid,
                        },
                        opts=keep,
                    ).sid
                bundle_sid = bundles[entry]
            number = TwilioNumber(
                f"{name}-number-{slot.key}",
                {
                    "partner_id": slot.partner_id,
                    "country": slot.country,
                    "number_type": slot.type,
                    "index": slot.index,
                    "friendly_name": slot.friendly_name,
                    "subaccount_sid": subaccount.sid,
                    "area_code": slot.request.area_code,
                    "locality": slot.request.locality,
                    "address_sid": address_sid,
                    "bundle_sid": bundle_sid,
                    "bundle_required": slot.key in args.bundle_required,
                    "voice_url": args.voice_url,
                    "status_callback": args.status_callback,
                },
                opts=keep,
            )
            numbers.append(
                {
                    "slot": slot.key,
                    "country": slot.country,
                    "type": slot.type,
                    "friendly_name": slot.friendly_name,
                    "phone_number": number.phone_number,
                    "sid": number.sid,
                    "status": number.status,
                    "waiting_for": number.waiting_for,
                }
            )
        self.outputs = {
            "twilio_subaccount": subaccount.sid,
            "telephony_numbers": numbers,
            "telephony_kept_on_delete": args.keep_on_delete,
        }
        self.register_outputs(self.outputs)
