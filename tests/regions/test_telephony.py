"""regions/telephony.yaml: loads, cites its sources, refuses unknown countries and fields."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from foundation.errors import InputError
from regions.catalog import CATALOG_DIR, load_catalog
from regions.telephony import load_telephony


def test_the_catalog_offers_what_it_cites() -> None:
    telephony = load_telephony(load_catalog())
    assert telephony.offered("BR") == telephony.offered("AR") == telephony.offered("CL") == ("toll_free",)
    assert telephony.offered("MX") == ("local", "mobile", "toll_free")
    assert telephony.offered("DE") == ()
    mx_local = telephony.requirements("MX", "local")
    assert mx_local is not None and (mx_local.address, mx_local.bundle) == ("locality", "required")
    lines = (CATALOG_DIR / "telephony.yaml").read_text().splitlines()
    for cc in telephony.countries:
        at = lines.index(f"  {cc}:")
        comment: list[str] = []
        while lines[at - 1 - len(comment)].startswith("  #"):
            comment.append(lines[at - 1 - len(comment)])
        cited = " ".join(comment)
        assert "https://" in cited and "twilio.com" in cited and "(read 20" in cited, f"{cc} has no cited source"


def copy_catalog(tmp_path: Path, telephony: str) -> Path:
    for source in CATALOG_DIR.glob("*.yaml"):
        if source.name != "telephony.yaml":
            shutil.copy2(source, tmp_path / source.name)
    (tmp_path / "telephony.yaml").write_text(telephony)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("countries:\n  ZZ:\n    local: {address: any, bundle: unstated}\n", "countries.ZZ: not a country"),
        ("countries:\n  BR:\n    landline: {address: any, bundle: unstated}\n", "countries.BR.landline: unknown field"),
        ("countries:\n  BR:\n    local: {address: maybe, bundle: unstated}\n", "countries.BR.local.address"),
        ("countries: [BR]\n", "countries"),
        ("- BR\n", "must be a mapping"),
    ],
)
def test_a_bad_catalog_is_refused_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    directory = copy_catalog(tmp_path, text)
    with pytest.raises(InputError, match=message):
        load_telephony(load_catalog(directory), directory)
