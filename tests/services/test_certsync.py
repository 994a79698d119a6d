"""The certificate sync against loopback fakes of the Kubernetes API and Kong: a renewed Secret is served by Kong
without a Pulumi run; nothing it was not given is read; stale certificates go, but never after a partial read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.certsync import Endpoint, certificate_id, sync
from tests.services.kong_tls_fake import FakeKong, FakeKubernetes, issue, serve, serve_tls, served_serial

NS = "partner-acme-voice"
HOSTS = ["api.acme-voice.voice-platform.example", "dashboard.acme-voice.voice-platform.example"]


@pytest.fixture
def fakes() -> Iterator[tuple[FakeKubernetes, FakeKong, Endpoint, Endpoint]]:
    kube, kong = FakeKubernetes("kube-token"), FakeKong("kong-token")
    with serve(kube) as kube_url, serve(kong) as kong_url:
        yield (
            kube,
            kong,
            Endpoint(kube_url, {"Authorization": "Bearer kube-token"}),
            Endpoint(kong_url, {"Kong-Admin-Token": "kong-token"}),
        )


def test_a_renewed_secret_is_served_by_kong_after_the_next_sync(fakes) -> None:
    kube, kong, kube_api, kong_api = fakes
    kube.add_role(NS, "kong-cert-sync-platform-hosts", ["tls-platform-hosts"])
    first = issue(HOSTS, serial=1001)
    kube.write_secret(NS, "tls-platform-hosts", *first)
    with serve_tls(kong) as port:
        report = sync(kube_api, kong_api, "eu-central")
        assert report.written == [f"{NS}/tls-platform-hosts"] and not report.failed
        assert served_serial(port, HOSTS[0]) == 1001
        assert served_serial(port, HOSTS[1]) == 1001

        # cert-manager renews around day 60: a new certificate in the same Secret. No Pulumi run happens.
        kube.write_secret(NS, "tls-platform-hosts", *issue(HOSTS, serial=2002))
        report = sync(kube_api, kong_api, "eu-central")
        assert report.written == [f"{NS}/tls-platform-hosts"]
        assert served_serial(port, HOSTS[0]) == 2002

    puts = kong.puts
    assert sync(kube_api, kong_api, "eu-central").unchanged == [f"{NS}/tls-platform-hosts"]
    assert kong.puts == puts  # an unchanged Secret is not written again
    stored = kong.certificates[certificate_id("eu-central", NS, "tls-platform-hosts")]
    assert sorted(stored["snis"]) == sorted(HOSTS)
    assert {"managed-by:kong-cert-sync", "region:eu-central"} <= set(stored["tags"])


def test_only_registered_secrets_are_read_and_a_pending_one_waits(fakes) -> None:
    kube, kong, kube_api, kong_api = fakes
    kube.write_secret(NS, "tenant-own-secret", *issue(["x.example"], serial=5))
    kube.add_role(NS, "unrelated", ["tenant-own-secret"], labelled=False)
    kube.add_role(NS, "kong-cert-sync-custom-domain", ["tls-custom-domain"])  # not issued yet
    report = sync(kube_api, kong_api, "eu-central")
    assert report.waiting == [f"{NS}/tls-custom-domain"]
    assert report.written == [] and kong.certificates == {}


def test_a_certificate_whose_registration_is_gone_is_deleted_but_not_after_a_failed_read(fakes) -> None:
    kube, kong, kube_api, kong_api = fakes
    kube.add_role(NS, "kong-cert-sync-platform-hosts", ["tls-platform-hosts"])
    kube.add_role("platform", "kong-cert-sync-meter", ["tls-meter"])
    kube.write_secret(NS, "tls-platform-hosts", *issue(HOSTS, serial=7))
    kube.write_secret("platform", "tls-meter", *issue(["meter.eu-central.voice-platform.example"], serial=8))
    assert len(sync(kube_api, kong_api, "eu-central").written) == 2
    # Another region's certificates share Kong: never touched by this region's sync.
    kong.certificates["other"] = {"id": "other", "snis": ["x"], "tags": ["managed-by:kong-cert-sync", "region:us-east"]}

    kube.roles = [r for r in kube.roles if r["metadata"]["namespace"] != NS]  # partner offboarded
    kube.fail_secrets = True  # ... and the cluster cannot be read completely this time
    report = sync(kube_api, kong_api, "eu-central")
    assert report.failed and report.deleted == []
    assert certificate_id("eu-central", NS, "tls-platform-hosts") in kong.certificates

    kube.fail_secrets = False
    report = sync(kube_api, kong_api, "eu-central")
    assert report.deleted == [certificate_id("eu-central", NS, "tls-platform-hosts")]
    assert set(kong.certificates) == {certificate_id("eu-central", "platform", "tls-meter"), "other"}


def test_regions_write_different_kong_certificates_for_the_same_secret_name() -> None:
    assert certificate_id("eu-central", "platform", "tls-meter") != certificate_id("us-east", "platform", "tls-meter")
    assert certificate_id("eu-central", "platform", "tls-meter") == certificate_id(
        "eu-central", "platform", "tls-meter"
    )


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--region", "nope!", "--kong-admin-url", "https://kong.example:8444"], "--region"),
        (["--region", "eu-central", "--kong-admin-url", "ftp://kong.example"], "--kong-admin-url"),
        (
            [
                "--region",
                "eu-central",
                "--kong-admin-url",
                "https://kong.example:8444",
                "--kubernetes-url",
                "http://[::1",
            ],
            "--kubernetes-url",
        ),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_contacted(cli, args: list[str], option: str) -> None:
    """The region names every Kong certificate this region writes and deletes: a wrong one is bad input (exit 2),
    like a URL that is not http(s)."""
    run = cli("certs", "sync", *args, code=2)
    assert option in run.err
