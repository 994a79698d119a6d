"""The voice upstream (`platform:voiceUpstream`): host:port, nothing else."""

from __future__ import annotations

import pytest

from gateway.voice import VoiceUpstream, parse_voice_upstream


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("voice.platform.svc.cluster.local:8080", VoiceUpstream("voice.platform.svc.cluster.local", 8080)),
        ("Voice-1.Internal:443", VoiceUpstream("voice-1.internal", 443)),
        ("10.20.0.15:9000", VoiceUpstream("10.20.0.15", 9000)),
        ("voice:1", VoiceUpstream("voice", 1)),
        ("voice:65535", VoiceUpstream("voice", 65535)),
    ],
)
def test_host_and_port(value: str, expected: VoiceUpstream) -> None:
    assert parse_voice_upstream(value) == expected


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "must be host:port"),
        (8080, "must be host:port"),
        ("voice", "a port is required"),
        (":8080", "a port is required"),
        ("https://voice:8080", "not a DNS name"),
        ("voice:8080/twilio", "is not a number"),
        ("voice.:8080", "not a DNS name"),
        ("voice_1:8080", "not a DNS name"),
        ("voice:0", "is not a number from 1 to 65535"),
        ("voice:65536", "is not a number from 1 to 65535"),
        ("voice:-1", "is not a number"),
        ("voice:٣", "is not a number"),  # an Arabic-Indic digit: isdigit() is true for it, int() takes it
    ],
)
def test_anything_else_is_refused(value: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_voice_upstream(value)
