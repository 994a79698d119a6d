"""The meter's Twilio signature check agrees with twilio's RequestValidator.validate, case by case; each partner's
callbacks verify with its own subaccount's token, looked up with the real `twilio` client from a loopback fake of
Twilio's Accounts API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from services.meter.app import MeterState
from services.meter.events import Form, parse_form
from services.meter.spool import Spool
from services.meter.subaccounts import SubaccountTokens
from tests.services.meter_harness import callback, meter_env, repo_roster, sign, subaccount

TWILIO_TOKEN = subaccount("acme-voice")[1]


@pytest.fixture(
    params=["http://127.0.0.1:8787", "https://meter.eu-central.voice-platform.example", "https://m.example:8443/prefix"]
)
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MeterState]:
    spool = Spool(tmp_path / "spool.db")
    roster = repo_roster()
    meter = MeterState(
        roster=roster,
        spool=spool,
        subaccounts=SubaccountTokens.from_env(meter_env()),
        kong_token="k",
        public_url=request.param,
    )
    yield meter
    spool.close()


def _form(fields: dict[str, str]) -> Form:
    form = parse_form("&".join(f"{k}={v}" for k, v in fields.items()).encode())
    assert isinstance(form, Form)
    return form


def test_agrees_with_request_validator(state: MeterState) -> None:
    validator = RequestValidator(TWILIO_TOKEN)
    base = state.public_url
    host, _, rest = base.partition("://")[2].partition("/")
    scheme = base.partition("://")[0]
    bare_host = host.split(":")[0]
    default_port = "443" if scheme == "https" else "80"
    fields = callback(To="%2B4930123456", Timestamp="Mon%2C+30+Nov+2026+10%3A00%3A00+%2B0000")
    form = _form(fields)
    for partner in ("acme-voice", "sakura-calls", "nobody-here"):
        path = f"/twilio/{partner}/status"
        prefix = f"/{rest}" if rest else ""
        variants = {
            f"{scheme}://{host}{prefix}{path}",
            f"{scheme}://{bare_host}{prefix}{path}",
            f"{scheme}://{bare_host}:{default_port}{prefix}{path}",
            f"{scheme}://other.example{prefix}{path}",
        }
        signatures = {sign(url, dict(form)) for url in variants}
        signatures |= {sign(base + path, dict(form), token="other-token"), "", "x", "ä" * 28, sign(base + path, {})}
        for signature in signatures:
            url = base + path
            ours = state.signature_ok(partner, form, signature, TWILIO_TOKEN)
            assert ours == validator.validate(url, dict(form), signature), (
                partner,
                signature,
            )
    assert state.signature_ok("acme-voice", form, sign(base + "/twilio/acme-voice/status", dict(form)), TWILIO_TOKEN)


def test_a_changed_field_breaks_the_signature(state: MeterState) -> None:
    form = _form(callback())
    signature = sign(state.public_url + "/twilio/acme-voice/status", dict(form))
    changed = Form(form)
    changed["CallDuration"] = "6000"
    assert state.signature_ok("acme-voice", form, signature, TWILIO_TOKEN)
    assert not state.signature_ok("acme-voice", changed, signature, TWILIO_TOKEN)
    assert not state.signature_ok("sakura-calls", form, signature, TWILIO_TOKEN)  # another partner's path
