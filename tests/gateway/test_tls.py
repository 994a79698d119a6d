"""Names and the domain proof (gateway/tls.py)."""

from __future__ import annotations

from gateway.tls import challenge_record, is_platform_host, platform_hosts, proof_matches


def test_platform_names_and_challenge_record() -> None:
    assert platform_hosts("acme", "z.example") == {
        "api": "api.acme.z.example",
        "dashboard": "dashboard.acme.z.example",
        "webhooks": "webhooks.acme.z.example",
    }
    assert challenge_record("voice.acme.example") == "_platform-challenge.voice.acme.example"
    assert is_platform_host("API.acme.z.example", "acme", "z.example")
    assert not is_platform_host("api.acme.z.example.evil.com", "acme", "z.example")
    assert not is_platform_host("api.acme-evil.z.example", "acme")


def test_proof_needs_the_exact_token() -> None:
    token = "s3cr3t"
    assert proof_matches(["other", "platform-domain-verification=s3cr3t"], token)
    assert not proof_matches(["platform-domain-verification=s3cr3"], token)
    assert not proof_matches(["platform-domain-verification=s3cr3t-and-more"], token)
    assert not proof_matches(["platform-domain-verification="], "")
    assert not proof_matches([], token)
