"""WebhooksDispatcher: the region's webhooks service (services/webhooks) - its workload and store, its identity for
the region's KMS key, the producers' token, and network policies that let it reach the internet on 443 only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.outputs import secret
from components.pod_identity import POD_IDENTITY_TRUST_POLICY
from components.runtime_service import SPOOL_MOUNT, RuntimeService, RuntimeServiceArgs
from regions.network import POD_IDENTITY_AGENT

WEBHOOKS_PORT = 8788
SERVICE = "webhooks"
ENCRYPTION_PURPOSE = "webhooks-endpoint-secrets"
"""The encryption context the service asks KMS for its data key with (services/webhooks/sealing.py); the role may
use the key with this context only."""
PRIVATE_V4 = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
)
PRIVATE_V6 = ("::1/128", "fc00::/7", "fe80::/10", "ff00::/8")


@dataclass(frozen=True)
class WebhooksDispatcherArgs:
    region_code: str
    """The region (labels and tags)."""
    namespace: pulumi.Input[str]
    """The region's platform namespace."""
    image: str
    """The platform services image (`platform-services webhooks serve`)."""
    kms_key_arn: pulumi.Input[str]
    """The region's KMS key: the data key that seals endpoint secrets is generated and decrypted under it."""
    cluster_name: pulumi.Input[str]
    """The EKS cluster (Pod Identity association)."""
    kong_token: pulumi.Input[str]
    """Bearer token the gateway forwards owners' requests with (secret)."""
    gateway_labels: dict[str, str]
    """Pod labels of the Kong data plane: the management API's only callers."""
    producer_labels: tuple[dict[str, str], ...]
    """Pod labels of the producers (meter, payouts job) allowed to POST /events."""
    vpc_cidr: str
    """The region's VPC: never a delivery target (policy and WEBHOOKS_BLOCKED_CIDRS)."""
    endpoint_cidrs: tuple[str, ...]
    """Interface endpoint subnets (KMS): the one private destination the pod reaches, on 443."""
    platform_domains: tuple[pulumi.Input[str], ...] = ()
    """The platform's DNS zones: endpoint URLs may not point into them."""
    extra_blocked_cidrs: tuple[str, ...] = field(default_factory=tuple)
    """More of the platform's own ranges (the cluster's service range, the gateway's public addresses)."""
    store_size: str = "20Gi"
    """The store's volume."""
    storage_class: str | None = None
    """StorageClass of the store's claim (the region's encrypted default, named so the claim never waits for one)."""
    runs_after: tuple[pulumi.Resource, ...] = ()
    """What the workload's first pods need in place (the node group, the Pod Identity agent, the storage class and
    its CSI driver): a first `up` creates the workload only after them (the deploy-order policy checks it)."""


class WebhooksDispatcher(pulumi.ComponentResource):
    event_token: pulumi.Output[str]
    cluster_url: pulumi.Output[str]

    def __init__(self, name: str, args: WebhooksDispatcherArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:webhooks_dispatcher:WebhooksDispatcher", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app": SERVICE, "app.kubernetes.io/part-of": "platform"}

        token = random.RandomPassword(f"{name}-event-token", length=48, special=False, opts=child)
        self.event_token = secret(token.result)

        # Pod Identity: the ServiceAccount `webhooks` may generate and decrypt the data key under the region's key,
        # with the service's encryption context only; no AWS key in the cluster.
        role = aws.iam.Role(f"{name}-role", assume_role_policy=POD_IDENTITY_TRUST_POLICY, opts=child)
        aws.iam.RolePolicy(
            f"{name}-kms",
            role=role.id,
            policy=pulumi.Output.from_input(args.kms_key_arn).apply(lambda arn: json.dumps(kms_policy(arn))),
            opts=child,
        )
        identity = aws.eks.PodIdentityAssociation(
            f"{name}-identity",
            cluster_name=args.cluster_name,
            namespace=args.namespace,
            service_account=SERVICE,
            role_arn=role.arn,
            opts=child,
        )

        blocked = ",".join((args.vpc_cidr, *args.extra_blocked_cidrs))
        domains = pulumi.Output.all(*args.platform_domains).apply(lambda names: ",".join(str(n) for n in names))
        # One replica: the store is a SQLite file on the replica's own volume (the meter's spool discipline), and
        # endpoints, fan-out and the delivery log live there; a second replica would be a second, disjoint store.
        service = RuntimeService(
            f"{name}-service",
            RuntimeServiceArgs(
                service=SERVICE,
                namespace=args.namespace,
                image=args.image,
                args=(
                    "webhooks",
                    "serve",
                    "--host",
                    "0.0.0.0",
                    "--port",
                    str(WEBHOOKS_PORT),
                    "--store",
                    f"local:{SPOOL_MOUNT}",
                ),
                port=WEBHOOKS_PORT,
                admit_from=args.gateway_labels,
                secret_env={"WEBHOOKS_EVENT_TOKEN": token.result, "WEBHOOKS_KONG_TOKEN": args.kong_token},
                env={
                    "WEBHOOKS_KMS_KEY_ID": args.kms_key_arn,
                    "WEBHOOKS_BLOCKED_CIDRS": blocked,
                    "WEBHOOKS_PLATFORM_DOMAINS": domains,
                },
                replicas=1,
                max_replicas=1,
                spool_size=args.store_size,
                storage_class=args.storage_class,
            ),
            # Pod Identity is injected at pod admission only: pods admitted before the association get no credentials.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[identity, *args.runs_after]),
        )
        self.cluster_url = pulumi.Output.concat("http://", service.cluster_host, f":{WEBHOOKS_PORT}")

        np = k8s.networking.v1
        selector = k8s.meta.v1.LabelSelectorArgs(match_labels={"app": SERVICE})

        def meta(suffix: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=f"{SERVICE}-{suffix}", namespace=args.namespace, labels=labels)

        def tcp(port: int) -> k8s.networking.v1.NetworkPolicyPortArgs:
            return np.NetworkPolicyPortArgs(port=port, protocol="TCP")

        # Producers inside the region (the gateway has its own policy from RuntimeService); policies add up.
        np.NetworkPolicy(
            f"{name}-producers",
            metadata=meta("producers"),
            spec=np.NetworkPolicySpecArgs(
                pod_selector=selector,
                policy_types=["Ingress"],
                ingress=[
                    np.NetworkPolicyIngressRuleArgs(
                        from_=[
                            np.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels_))
                            for labels_ in args.producer_labels
                        ],
                        ports=[tcp(WEBHOOKS_PORT)],
                    )
                ],
            ),
            opts=child,
        )
        # Egress: the internet on 443 and nothing private (the service checks every address too: this is the second
        # wall), cluster DNS, and the region's KMS interface endpoints and Pod Identity agent for its data key.
        np.NetworkPolicy(
            f"{name}-egress",
            metadata=meta("egress"),
            spec=np.NetworkPolicySpecArgs(
                pod_selector=selector,
                policy_types=["Egress"],
                egress=[
                    np.NetworkPolicyEgressRuleArgs(
                        to=[
                            np.NetworkPolicyPeerArgs(
                                ip_block=np.IPBlockArgs(cidr="0.0.0.0/0", except_=[*PRIVATE_V4, args.vpc_cidr])
                            ),
                            np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(cidr="::/0", except_=list(PRIVATE_V6))),
                        ],
                        ports=[tcp(443)],
                    ),
                    np.NetworkPolicyEgressRuleArgs(
                        to=[
                            np.NetworkPolicyPeerArgs(
                                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"kubernetes.io/metadata.name": "kube-system"}
                                ),
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
                            )
                        ],
                        ports=[np.NetworkPolicyPortArgs(port=53, protocol="UDP"), tcp(53)],
                    ),
                    np.NetworkPolicyEgressRuleArgs(
                        to=[np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(cidr=c)) for c in args.endpoint_cidrs],
                        ports=[tcp(443)],
                    ),
                    np.NetworkPolicyEgressRuleArgs(
                        to=[np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(cidr=POD_IDENTITY_AGENT))],
                        ports=[tcp(80)],
                    ),
                ],
            ),
            opts=child,
        )
        self.register_outputs({"cluster_url": self.cluster_url, "event_token": self.event_token})


def kms_policy(key_arn: str) -> dict[str, Any]:
    """The role's policy: the data key is generated and decrypted under the region's key, with the service's
    encryption context only (what services/webhooks/sealing.py asks KMS with)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": key_arn,
                "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": ENCRYPTION_PURPOSE}},
            }
        ],
    }
