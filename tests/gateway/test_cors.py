"""CORS origin patterns -> Kong regexes, judged by a model of Kong 3.9's cors handler."""

from __future__ import annotations

import re

import pytest

from gateway.cors import kong_origin_allows, origin_regex

ZONE = "voice-platform.example"


def test_the_old_wildcard_origin_matched_no_subdomain_in_kong() -> None:
    # What apis.yaml used to plan: Kong reads it as a regex ("https:/" "/*" any-char "voice...").
    assert not kong_origin_allows(f"https://*.{ZONE}", f"https://x.{ZONE}")
    assert kong_origin_allows(f"https://*.{ZONE}", f"https://x{ZONE}")


def test_subdomain_pattern_is_an_anchored_regex_of_one_label() -> None:
    regex = origin_regex("https://*.{zone}", ZONE)
    assert regex.startswith("^") and regex.endswith("$")
    re.compile(regex)
    assert kong_origin_allows(regex, f"https://api.{ZONE}")
    assert kong_origin_allows(regex, f"https://api.{ZONE}:443")  # default port normalized away
    for origin in (f"https://api.{ZONE}.evil.com", "https://evil.com", f"https://a.b.{ZONE}", f"http://api.{ZONE}"):
        assert not kong_origin_allows(regex, origin), origin


def test_plain_origin_stays_a_plain_string() -> None:
    assert origin_regex("https://app.{zone}", ZONE) == f"https://app.{ZONE}"
    assert kong_origin_allows(f"https://app.{ZONE}", f"https://app.{ZONE}")
    assert not kong_origin_allows(f"https://app.{ZONE}", f"https://app.{ZONE}.evil.com")


@pytest.mark.parametrize(
    "bad", ["http://*.{zone}", "https://*.*.{zone}", "https://x.{zone}/path", "*", "https://a*b.{zone}"]
)
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="CORS origin"):
        origin_regex(bad, ZONE)
