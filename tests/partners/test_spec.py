"""PartnerSpec: every field's rejection, the safe YAML loader and the catalog check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from foundation.errors import InputError
from foundation.naming import RESERVED_PARTNER_IDS
from partners.spec import check_against_catalog, load_spec, load_spec_text
from regions.catalog import load_catalog
from tests.conftest import ROOT

EXAMPLES = sorted([*ROOT.glob("partners/*.yaml"), *ROOT.glob("partners/examples/*.yaml")])
EXAMPLES = [p for p in EXAMPLES if p.stem not in RESERVED_PARTNER_IDS]
BASE = yaml.safe_load((ROOT / "partners" / "acme-voice.yaml").read_text())


def spec_text(**changes: Any) -> str:
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = doc
        for part in parents:
            target = target[part]
        if value is DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return yaml.safe_dump(doc)


DELETE = object()


def problems_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(InputError) as caught:
        load_spec_text(text, "spec.yaml")
    assert all(p.source == "spec.yaml" for p in caught.value.problems)
    return [(p.field, p.message) for p in caught.value.problems]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_specs_are_valid_and_fit_the_catalog(path: Path) -> None:
    spec = load_spec(path)
    check_against_catalog(spec, load_catalog(), str(path))


def test_three_example_partners_one_per_tier_in_three_regions() -> None:
    specs = [load_spec(p) for p in ROOT.glob("partners/*.yaml") if p.stem not in RESERVED_PARTNER_IDS]
    assert sorted(s.tier for s in specs) == ["enterprise", "professional", "starter"]
    assert len({s.home_region for s in specs}) == 3
    for spec in specs:
        assert (ROOT / "stacks" / f"Pulumi.partner-{spec.id}.yaml").is_file()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "Acme", "should match pattern"),
        ("id", "ac", "should match pattern"),
        ("id", "9acme", "should match pattern"),
        ("id", "acme-", "should match pattern"),
        ("id", "../../etc/passwd", "should match pattern"),
        ("id", "a" * 41, "should match pattern"),
        ("id", 42, "valid string"),
        ("company_name", "", "at least 1"),
        ("company_name", "Evil\u202eCorp", "bidirectional"),
        ("company_name", "Line\nbreak", "control"),
        ("tier", "platinum", "'starter', 'professional' or 'enterprise'"),
        ("domain", "https://voice.acme.example", "hostname only"),
        ("domain", "voice.acme.example:8443", "hostname only"),
        ("domain", "*.acme.example", "hostname only"),
        ("domain", "localhost", "fully qualified"),
        ("domain", "voice.acme.123", "top-level domain"),
        ("home_region", "EU_CENTRAL", "should match pattern"),
        ("countries", [], "at least 1"),
        ("countries", ["de"], "should match pattern"),
        ("countries", ["DE", "DE"], "listed once"),
        ("countries", "DE", "valid tuple"),
        ("contact__email", "not-an-email", "should match pattern"),
        ("contact__name", "", "at least 1"),
        ("branding__primary_color", "blue", "should match pattern"),
        ("branding__text_color", "#12345", "should match pattern"),
        ("branding__font_family", "Inter; }", "should match pattern"),
        ("branding__base_size", "100px", "should match pattern"),
        ("branding__logo_url", "http://cdn.acme.example/logo.svg", "https://"),
        ("branding__logo_url", "https://user:pw@cdn.acme.example/logo.svg", "https://"),
        ("branding__logo_url", "javascript:alert(1)", "https://"),
        ("branding__favicon_url", "https://cdn.acme.example/a b.ico", "whitespace"),
        ("branding__voice_greeting", "x" * 501, "at most 500"),
        ("branding__voice_personality", "sarcastic", "Input should be"),
        ("branding__custom_css", "@import 'https://evil.example/x.css';", "@import"),
        ("branding__custom_css", "body { background: url(https://evil.example/p.gif) }", "url()"),
        ("branding__custom_css", "p { width: expression(alert(1)) }", "expression()"),
        ("branding__custom_css", "</style><script>alert(1)</script>", "markup"),
        ("branding__custom_css", "p { b\\61 ckground: red }", "backslash"),
        ("branding__custom_js", "alert(1)", "custom JavaScript is not accepted"),
        ("billing__currency", "euro", "should match pattern"),
        ("billing__payout_method", "cash", "Input should be"),
    ],
)
def test_each_field_rejects_bad_values(field: str, value: Any, message: str) -> None:
    path = field.replace("__", ".")
    problems = problems_of(spec_text(**{field: value}))
    assert any((f == path or f.startswith(f"{path}.")) and message in m for f, m in problems), problems


@pytest.mark.parametrize(
    "field",
    [
        "id",
        "company_name",
        "tier",
        "domain",
        "home_region",
        "countries",
        "contact",
        "branding",
        "billing",
        "branding__primary_color",
        "branding__logo_url",
        "branding__voice_greeting",
        "billing__currency",
        "contact__email",
    ],
)
def test_required_fields(field: str) -> None:
    problems = problems_of(spec_text(**{field: DELETE}))
    assert (field.replace("__", "."), "Field required") in problems


def test_unknown_fields_are_refused_at_every_level() -> None:
    problems = problems_of(spec_text(owner="x", branding__logo_size=3, billing__iban="x"))
    assert {f for f, m in problems if m == "unknown field"} == {"owner", "branding.logo_size", "billing.iban"}


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(spec_text(id="BAD", tier="gold", branding__primary_color="red"))
    assert {f for f, _ in problems} == {"id", "tier", "branding.primary_color"}


def test_norway_problem_gets_a_hint() -> None:
    text = spec_text().replace("- DE\n- AT", "- SE\n- NO")
    assert any("quote it" in m for _, m in problems_of(text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: !!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
            ),
            "alias",
        ),
        ("[" * 100 + "]" * 100, "deeper"),
        ("id: a\nid: b\n", "duplicate key"),
        ("id: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("", "must be a mapping"),
        ("x: " + "a" * (300 * 1024) + "\n", "larger than"),
    ],
    ids=["python-tag", "alias-bomb", "deep-nesting", "duplicate-key", "malformed", "not-a-mapping", "empty", "huge"],
)
def test_hostile_yaml_is_refused_with_a_message(text: str, message: str) -> None:
    problems = problems_of(text)
    assert any(message in m for _, m in problems), problems


def test_unreadable_files(tmp_path: Path) -> None:
    binary = tmp_path / "bad.yaml"
    binary.write_bytes(b"id: \xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8"):
        load_spec(binary)
    with pytest.raises(InputError, match="no such file"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="not a regular file"):
        load_spec(tmp_path)


def test_catalog_check_enforces_residency() -> None:
    catalog = load_catalog()
    spec = load_spec_text(spec_text(home_region="us-east"), "spec.yaml")
    with pytest.raises(InputError) as caught:
        check_against_catalog(spec, catalog, "spec.yaml")
    (problem,) = caught.value.problems
    assert problem.field == "countries.0"
    assert "DE requires data residency" in problem.message and "eu-central" in problem.message

    jp = load_spec_text(spec_text(home_region="ap-singapore", countries=["JP", "SG"]), "spec.yaml")
    warnings = check_against_catalog(jp, catalog, "spec.yaml")
    assert len(warnings) == 1 and "JP prefers data residency in ap-tokyo" in warnings[0]

    with pytest.raises(InputError, match="unknown region"):
        check_against_catalog(load_spec_text(spec_text(home_region="eu-moon"), "s"), catalog, "s")
    with pytest.raises(InputError, match="unknown country 'ZZ'"):
        check_against_catalog(load_spec_text(spec_text(countries=["DE", "ZZ"]), "s"), catalog, "s")


@pytest.mark.parametrize("reserved", ["tiers", "prices"])
def test_table_file_names_are_not_partner_ids(reserved: str) -> None:
    text = (ROOT / "partners" / "acme-voice.yaml").read_text().replace("id: acme-voice", f"id: {reserved}", 1)
    with pytest.raises(InputError, match="reserved"):
        load_spec_text(text, "spec.yaml")


@pytest.mark.parametrize(
    "domain", ["voice\n.acme.example", "voice.acme\n.example", "voice.acme.example\n", "voz.pampas.example\x00"]
)
def test_a_newline_hidden_in_a_domain_label_is_refused(domain: str) -> None:
    with pytest.raises(InputError, match="domain"):
        load_spec_text(spec_text(domain=domain), "spec.yaml")
