"""`platformctl verify-domain`: a real DNS lookup (dnspython) against a DNS server on loopback, the token read from
the deployed stack through the Automation API seam, the flag written in place only when the proof holds."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import yaml

import platformctl.engine as engine
from platformctl import journal as journals
from tests.conftest import ROOT, tree_snapshot

TOKEN = "s3cr3t-token-of-acme-voice-0123456789abcdef"
RECORD = "_platform-challenge.voice.acme.example."
DELEGATION = "_acme-challenge.voice.acme.example."
DELEGATION_TARGET = "_acme-challenge.acme-voice.voice-platform.example."


class LoopbackDns:
    """A UDP DNS server on 127.0.0.1 answering TXT queries from a dict and CNAME queries from another (dnspython
    builds the wire answers; a CNAME query for a name with a CNAME gets that record, RFC 1034 section 3.6.2)."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.cnames: dict[str, str] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            values = self.records.get(question.name.to_text())
            cname = self.cnames.get(question.name.to_text())
            if question.rdtype == dns.rdatatype.CNAME and cname is not None:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "CNAME", cname))
            elif values is None and cname is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT and values:  # an empty list: the name exists, no TXT
                quoted = [f'"{v}"' for v in values]
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT", *quoted))
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def dns_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackDns]:
    server = LoopbackDns()
    monkeypatch.setenv("PLATFORMCTL_DNS_SERVER", f"127.0.0.1:{server.port}")
    yield server
    server.close()


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The Automation API seam: a deployed partner stack whose outputs hold the (secret) token."""
    outputs: dict[str, Any] = {"domain_challenge_token": SimpleNamespace(value=TOKEN, secret=True)}

    class Automation:
        def LocalWorkspaceOptions(self, **kwargs: Any) -> SimpleNamespace:  # noqa: N802 - mirrors the API
            return SimpleNamespace(**kwargs)

        def select_stack(self, **kwargs: Any) -> Any:
            assert kwargs["stack_name"] == "partner-acme-voice"
            return SimpleNamespace(outputs=lambda: outputs)

    monkeypatch.setattr(engine, "_automation", lambda: Automation())
    monkeypatch.setattr(engine.shutil, "which", lambda name: "/opt/pulumi/bin/pulumi" if name == "pulumi" else None)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-passphrase")
    return outputs


def stack_config(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / "stacks" / "Pulumi.partner-acme-voice.yaml").read_text())["config"]


def test_a_published_token_verifies_the_domain(cli, repo_copy: Path, dns_server: LoopbackDns, deployed) -> None:
    path = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    path.write_text("# owned by team-eu\n" + path.read_text())
    dns_server.records[RECORD] = ["unrelated", f"platform-domain-verification={TOKEN}"]
    dns_server.cnames[DELEGATION] = DELEGATION_TARGET.upper()  # DNS names compare case-insensitively
    run = cli("verify-domain", "acme-voice", root=repo_copy)
    assert "voice.acme.example verified" in run.out and TOKEN not in run.out + run.err
    assert stack_config(repo_copy)["platform:domainVerified"] == "voice.acme.example"
    assert path.read_text().startswith("# owned by team-eu\n")  # edited in place
    assert "already verified" in cli("verify-domain", "acme-voice", root=repo_copy).out


@pytest.mark.parametrize(
    "published",
    [None, [], ["platform-domain-verification=wrong"], [f"platform-domain-verification={TOKEN}x"], [TOKEN]],
)
def test_no_proof_writes_nothing(cli, repo_copy: Path, dns_server: LoopbackDns, deployed, published) -> None:
    if published is not None:
        dns_server.records[RECORD] = published
    before = tree_snapshot(repo_copy)
    run = cli("verify-domain", "acme-voice", code=1, root=repo_copy)
    assert "_platform-challenge.voice.acme.example: no TXT record holds" in run.err
    assert TOKEN not in run.out + run.err
    assert tree_snapshot(repo_copy) == before


@pytest.mark.parametrize("target", [None, "acme-voice.acme.voice-platform.example.", "attacker.example."])
def test_a_proof_without_the_acme_delegation_writes_nothing(
    cli, repo_copy: Path, dns_server: LoopbackDns, deployed, target: str | None
) -> None:
    """Failing before: the TXT proof alone set domainVerified, and the custom-domain Certificate then waited 900 s
    for a DNS-01 answer cert-manager could not give, failing the partner's whole `up`."""
    dns_server.records[RECORD] = [f"platform-domain-verification={TOKEN}"]
    if target is not None:
        dns_server.cnames[DELEGATION] = target
    before = tree_snapshot(repo_copy)
    run = cli("verify-domain", "acme-voice", code=1, root=repo_copy)
    assert "_acme-challenge.voice.acme.example: must be a CNAME to _acme-challenge.acme-voice.voice-platform" in run.err
    assert ("there is no CNAME record" if target is None else f"it is a CNAME to {target.rstrip('.')}") in run.err
    assert tree_snapshot(repo_copy) == before and TOKEN not in run.out + run.err


def test_a_stack_not_deployed_yet_says_what_to_do(cli, repo_copy: Path, dns_server: LoopbackDns, deployed) -> None:
    deployed.clear()
    run = cli("verify-domain", "acme-voice", code=1, root=repo_copy)
    assert "no domain_challenge_token output yet" in run.err


@pytest.mark.parametrize("partner", ["../etc", "nobody-here", "tiers"])
def test_bad_partners_are_bad_input(cli, repo_copy: Path, partner: str) -> None:
    run = cli("verify-domain", partner, code=2, root=repo_copy)
    assert "PARTNER" in run.err


def test_without_the_pulumi_cli_it_points_the_way(cli, repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    run = cli("verify-domain", "acme-voice", code=1, root=repo_copy)
    assert "Pulumi CLI is not on PATH" in run.err


def test_a_verified_domain_is_certified_and_routed(plan_in, repo_copy: Path) -> None:
    path = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    path.write_text(path.read_text() + "  platform:domainVerified: voice.acme.example\n")
    plan = plan_in(repo_copy, "partner-acme-voice")
    certificates = plan.resources("partner-acme-voice", "kubernetes:cert-manager.io/v1:Certificate")
    assert any(c.inputs["spec"]["dnsNames"] == ["voice.acme.example"] for c in certificates)


KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from fleet.repo import Repo
from platformctl import changes, domains

real_write = changes.write_atomic

def killed(path, content):
    if sys.argv[2] == "after":
        real_write(path, content)
    os.kill(os.getpid(), signal.SIGKILL)  # the journal says `writing`; the process dies, no cleanup runs

changes.write_atomic = killed
outputs = lambda repo, stack: {"domain_challenge_token": sys.argv[3]}
domains.verify_domain(Repo(Path(sys.argv[1])), "acme-voice", outputs=outputs)
"""


@pytest.mark.parametrize("killed", ["before", "after"])
def test_a_verification_killed_while_writing_is_recovered_by_the_next_command(
    cli, repo_copy: Path, dns_server: LoopbackDns, deployed, killed: str
) -> None:
    """Failing before: verify-domain wrote its stack file itself, with no journal; now it goes through the change
    path, so a run killed between its journal and its write is rolled back by the next command that takes the lock."""
    path = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    before = path.read_bytes()
    dns_server.records[RECORD] = [f"platform-domain-verification={TOKEN}"]
    dns_server.cnames[DELEGATION] = DELEGATION_TARGET
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(repo_copy), killed, TOKEN], env=env, capture_output=True, timeout=120
    )
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()
    pending = journals.pending(repo_copy, repo_copy / ".platformctl")
    assert [(j.locks, j.phase) for j in pending] == [(["partner-acme-voice"], "writing")]
    assert (path.read_bytes() == before) is (killed == "before")
    assert "interrupted change" in cli("validate", code=2, root=repo_copy).err
    again = cli("verify-domain", "acme-voice", root=repo_copy)
    assert "an interrupted change to partner-acme-voice was rolled back" in again.err
    assert "voice.acme.example verified" in again.out
    assert stack_config(repo_copy)["platform:domainVerified"] == "voice.acme.example"
    assert journals.pending(repo_copy, repo_copy / ".platformctl") == []


def test_a_spec_changed_during_the_dns_check_is_refused_and_nothing_written(
    repo_copy: Path, dns_server: LoopbackDns
) -> None:
    """The change path decides on a fresh read under the partner's lock: a domain edited while the DNS was being
    asked is not the one that was proven."""
    from fleet.repo import Repo
    from foundation.errors import InputError
    from platformctl.domains import verify_domain

    dns_server.records[RECORD] = [f"platform-domain-verification={TOKEN}"]
    dns_server.cnames[DELEGATION] = DELEGATION_TARGET
    spec = repo_copy / "partners" / "acme-voice.yaml"
    stack = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    before = stack.read_bytes()

    def outputs(repo: Repo, _stack: Any) -> dict[str, Any]:
        spec.write_text(spec.read_text().replace("voice.acme.example", "voice2.acme.example"))
        return {"domain_challenge_token": TOKEN}

    with pytest.raises(InputError, match="changed while it was being verified"):
        verify_domain(Repo(repo_copy), "acme-voice", outputs=outputs)
    assert stack.read_bytes() == before
    assert journals.pending(repo_copy, repo_copy / ".platformctl") == []
