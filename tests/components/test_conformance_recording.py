"""ConformanceRecording under the SDK's mocks: the conformance job's warehouse access in one region is one role that
may write CONFORMANCE_RESULTS only, a key-pair service user holding it, and a Secret (with the names the job reads)
whose values are Pulumi secrets; its pods may reach public addresses on 443 only."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from foundation.warehouse_schema import CONFORMANCE_RESULTS
from services.conformance import WAREHOUSE_ENV
from services.warehouse import KEY_ENV


class _Capture(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: dict[str, tuple[str, dict[str, Any]]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources[args.name] = (args.typ, dict(args.inputs))
        outputs = dict(args.inputs)
        if args.typ == "tls:index/privateKey:PrivateKey":
            outputs |= {"privateKeyPem": "-----BEGIN PRIVATE KEY-----\nMIIxx\n-----END PRIVATE KEY-----\n",
                        "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nMIIyy\n-----END PUBLIC KEY-----\n"}  # fmt: skip
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


def _planned() -> dict[str, tuple[str, dict[str, Any]]]:
    from components.conformance_recording import ConformanceRecording, ConformanceRecordingArgs

    capture = _Capture()
    pulumi.runtime.set_mocks(capture, preview=False)
    try:

        @pulumi.runtime.test
        def build() -> pulumi.Output[Any]:
            component = ConformanceRecording(
                "calsync-eu-central-conformance",
                ConformanceRecordingArgs(
                    integration_id="calsync",
                    region="eu-central",
                    snowflake_organization="CORPORG",
                    snowflake_account="PLATFORM_EU_CENTRAL",
                ),
            )
            return pulumi.Output.from_input(component.secret_name)

        build()
    finally:
        pulumi.runtime.settings.reset_options()
    return capture.resources


def test_the_role_writes_the_results_table_only() -> None:
    resources = _planned()
    grants = [inputs for typ, inputs in resources.values() if typ.endswith("GrantPrivilegesToAccountRole")]
    on_tables = [g for g in grants if "onSchemaObject" in g]
    assert len(on_tables) == 1 and on_tables[0]["privileges"] == ["INSERT", "SELECT"]
    assert on_tables[0]["onSchemaObject"]["objectName"] == CONFORMANCE_RESULTS.fqn("PLATFORM_EU_CENTRAL")
    others = sorted(p for g in grants if "onSchemaObject" not in g for p in g["privileges"])
    assert others == ["USAGE", "USAGE", "USAGE"]  # database, RAW schema, load warehouse: nothing else
    (role,) = [i for t, i in resources.values() if t == "snowflake:index/accountRole:AccountRole"]
    (user,) = [i for t, i in resources.values() if t == "snowflake:index/serviceUser:ServiceUser"]
    assert role["name"] == user["name"] == "PLATFORM_EU_CENTRAL_CONFORMANCE_CALSYNC"
    assert user["defaultRole"] == role["name"] and user["rsaPublicKey"] == "MIIyy"  # key pair, no password
    assert "password" not in user


def test_the_secret_has_the_names_the_job_reads_and_holds_them_as_secrets() -> None:
    resources = _planned()
    (secret,) = [i for t, i in resources.values() if t == "kubernetes:core/v1:Secret"]
    assert secret["metadata"] == {
        "name": "conformance-warehouse",
        "namespace": "integration-calsync-system",
        "labels": {"integration_id": "calsync", "isolation": "strict"},
    }
    # Pulumi secrets: never in a plan or state in clear (the whole map is marked, its values are).
    marked = secret["stringData"]
    assert marked.get(pulumi.runtime.rpc._special_sig_key) == pulumi.runtime.rpc._special_secret_sig
    data = marked["value"]
    assert set(data) == {WAREHOUSE_ENV, KEY_ENV}
    url = data[WAREHOUSE_ENV]
    assert url == (
        "snowflake://CORPORG-PLATFORM_EU_CENTRAL/PLATFORM_EU_CENTRAL?user=PLATFORM_EU_CENTRAL_CONFORMANCE_CALSYNC"
        "&role=PLATFORM_EU_CENTRAL_CONFORMANCE_CALSYNC&warehouse=PLATFORM_EU_CENTRAL_LOAD_WH"
    )
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from services.warehouse import snowflake_params

    # The URL is one the job's warehouse client accepts (its key comes from the Secret's other entry).
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    params = snowflake_params(url, {KEY_ENV: pem.decode()})
    assert (params["account"], params["database"], params["role"]) == (
        "CORPORG-PLATFORM_EU_CENTRAL",
        "PLATFORM_EU_CENTRAL",
        "PLATFORM_EU_CENTRAL_CONFORMANCE_CALSYNC",
    )


def test_the_job_reaches_public_addresses_on_443_only() -> None:
    resources = _planned()
    (policy,) = [i for t, i in resources.values() if t == "kubernetes:networking.k8s.io/v1:NetworkPolicy"]
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "conformance"}}
    assert spec["policyTypes"] == ["Egress"] and "ingress" not in spec
    (rule,) = spec["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 443}]
    (peer,) = rule["to"]
    assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"} <= set(peer["ipBlock"]["except"])
    assert "PRIVATE KEY" not in json.dumps(policy)
