"""The API catalog behind Kong (`gateway/apis.yaml`) and the tier rate limits the gateway applies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foundation.errors import InputError
from gateway.model import load_api_catalog
from gateway.rate_limits import rate_limit_config
from partners.tiers import load_tiers
from tests.conftest import ROOT


def test_the_catalog_loads_and_every_deprecated_version_has_a_successor() -> None:
    catalog = load_api_catalog(ROOT / "gateway" / "apis.yaml")
    for api in catalog.apis.values():
        for version in api.versions.values():
            if version.sunset:
                assert version.successor in api.versions


def test_every_api_feature_is_held_by_some_tier() -> None:
    catalog, tiers = load_api_catalog(ROOT / "gateway" / "apis.yaml"), load_tiers()
    for name, api in catalog.apis.items():
        assert tiers.holding(api.feature), f"no tier holds {api.feature} (api {name})"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("upstream_namespace: platform", "upstream_namespace: platform\nextra: 1"), "unknown"),
        (lambda t: t.replace("successor: v2}", "successor: v9}", 1), "unknown successor v9"),
        (lambda t: t.replace("port: 8080", "port: 99999", 1), "port"),
        (lambda t: "- not a mapping\n", "valid dictionary"),
    ],
)
def test_a_broken_catalog_names_the_file(tmp_path: Path, edit, message: str) -> None:
    bad = tmp_path / "apis.yaml"
    bad.write_text(edit((ROOT / "gateway" / "apis.yaml").read_text()))
    with pytest.raises(InputError, match=message) as caught:
        load_api_catalog(bad)
    assert all(str(bad) in p.source for p in caught.value.problems)


def test_a_tiers_rate_limit_carries_the_tier_tables_limits() -> None:
    for tier in load_tiers().tiers.values():
        config = json.loads(rate_limit_config(tier.rate_limit))
        assert (config["second"], config["minute"], config["hour"]) == (
            tier.rate_limit.second,
            tier.rate_limit.minute,
            tier.rate_limit.hour,
        )
        assert config["limit_by"] == "consumer"
