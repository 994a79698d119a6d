"""The spec's telephony section: bounds, slots and their names."""

from __future__ import annotations

import pytest
import yaml

from foundation.errors import InputError
from partners.spec import load_spec_text
from partners.telephony import number_slots
from tests.conftest import ROOT

EXAMPLE = (ROOT / "partners" / "examples" / "pampas-voz.yaml").read_text()


def spec_with(numbers: list, partner_id: str = "pampas-voz"):
    doc = yaml.safe_load(EXAMPLE)
    doc["id"] = partner_id
    doc["telephony"] = {"numbers": numbers}
    return load_spec_text(yaml.safe_dump(doc), "spec.yaml")


def test_slots_are_numbered_per_country_and_type_in_spec_order() -> None:
    spec = spec_with(
        [
            {"country": "BR", "type": "toll_free", "count": 2},
            {"country": "AR", "type": "toll_free"},
            {"country": "BR", "type": "toll_free", "locality": "São Paulo"},
        ]
    )
    assert [s.key for s in number_slots(spec)] == [
        "br-toll-free-0",
        "br-toll-free-1",
        "ar-toll-free-0",
        "br-toll-free-2",
    ]
    assert number_slots(spec)[3].request.locality == "São Paulo"


def test_friendly_names_fit_twilio_for_the_longest_id_and_index() -> None:
    longest = "a" + "b" * 38 + "c"
    spec = spec_with([{"country": "BR", "type": "toll_free", "count": 20}] * 5, partner_id=longest)
    names = [s.friendly_name for s in number_slots(spec)]
    assert len(names) == 100 and len(set(names)) == 100
    assert max(len(n) for n in names) <= 64


def test_no_telephony_no_slots() -> None:
    assert number_slots(load_spec_text(EXAMPLE.split("# Twilio numbers")[0], "spec.yaml")) == []


@pytest.mark.parametrize(
    "entry",
    [
        {"country": "BR", "type": "toll_free", "count": 21},
        {"country": "br", "type": "toll_free"},
        {"country": "BR", "type": "toll_free", "locality": "Rio\u202e"},
        {"country": "BR", "type": "toll_free", "locality": " Rio"},
        {"country": "BR", "type": "toll_free", "locality": "R" * 65},
        {"country": "BR", "type": "toll_free", "address_sid": "AD" + "g" * 32},
        {"country": "BR", "type": "toll_free", "count": "2; DROP"},
    ],
)
def test_hostile_entries_are_refused(entry: dict) -> None:
    with pytest.raises(InputError) as err:
        spec_with([entry])
    assert "telephony.numbers.0" in str(err.value)


def test_an_empty_or_huge_list_is_refused() -> None:
    with pytest.raises(InputError, match=r"telephony\.numbers"):
        spec_with([])
    with pytest.raises(InputError, match=r"telephony\.numbers"):
        spec_with([{"country": "BR", "type": "toll_free"}] * 33)


@pytest.mark.parametrize("count", [True, "2", 2.0, 2.5, None])
def test_count_is_a_strict_integer(count: object) -> None:
    # YAML `count: yes`, `count: "2"` and `count: 2.0` are not counts: refused with the field named, not coerced.
    with pytest.raises(InputError) as caught:
        spec_with([{"country": "BR", "type": "toll_free", "count": count}])
    assert [p.message for p in caught.value.problems if p.field == "telephony.numbers.0.count"] == [
        "Input should be a valid integer"
    ]


def test_count_as_yaml_text_is_refused_for_true_quoted_and_float() -> None:
    base = EXAMPLE.split("# Twilio numbers")[0]
    for literal in ("true", '"2"', "2.0"):
        text = base + f"telephony:\n  numbers:\n    - country: BR\n      type: toll_free\n      count: {literal}\n"
        with pytest.raises(InputError, match=r"telephony\.numbers\.0\.count"):
            load_spec_text(text, "spec.yaml")
    text = base + "telephony:\n  numbers:\n    - country: BR\n      type: toll_free\n      count: 2\n"
    assert load_spec_text(text, "spec.yaml").telephony.numbers[0].count == 2  # type: ignore[union-attr]
