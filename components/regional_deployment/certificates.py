"""The region's certificates: cert-manager with one ACME ClusterIssuer (DNS-01 in the platform's Route 53 zone,
gateway/tls.py), and the job that copies the issued certificates into Kong (components/certificate_sync.py)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.certificate_sync import KongCertificateSync, KongCertificateSyncArgs
from components.pod_identity import POD_IDENTITY_TRUST_POLICY
from components.regional_deployment.args import RegionalDeploymentArgs
from components.regional_deployment.cluster import RegionCluster
from gateway.tls import ACME_ISSUER

CERT_MANAGER_CHART_VERSION = "v1.18.2"
ACME_SERVER = "https://acme-v02.api.letsencrypt.org/directory"
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
ACME_RECORDS_ONLY = {
    "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]},
    "ForAllValues:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]},
}
"""cert-manager may change TXT records under `_acme-challenge` names and nothing else in the platform zone (not a
partner's `api` CNAME, not another region's records). Route 53 condition keys for ChangeResourceRecordSets (names
are normalized: lower case, no trailing dot): AWS Route 53 developer guide, "Using IAM policy conditions for
fine-grained access control", https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/specifying-rrset-conditions.html.
Delegated partner challenges land there too: their CNAME target is `_acme-challenge.<id>.<zone>` (gateway/tls.py)."""


def build_cert_manager(
    name: str, args: RegionalDeploymentArgs, cluster: RegionCluster, aws_opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """cert-manager with one ClusterIssuer: ACME DNS-01 in the platform's Route 53 zone (gateway/tls.py).
    Returns the issuer (a Certificate of the region names it and waits for it)."""
    k8s_opts = cluster.k8s_opts
    namespace = k8s.core.v1.Namespace(
        f"{name}-cert-manager-ns", metadata=k8s.meta.v1.ObjectMetaArgs(name="cert-manager"), opts=k8s_opts
    )
    role = aws.iam.Role(
        f"{name}-cert-manager-role",
        description="cert-manager: DNS-01 answers in the platform zone",
        assume_role_policy=POD_IDENTITY_TRUST_POLICY,
        opts=aws_opts,
    )
    aws.iam.RolePolicy(
        f"{name}-cert-manager-dns",
        role=role.name,
        policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "route53:GetChange", "Resource": "arn:aws:route53:::change/*"},
                    {
                        "Effect": "Allow",
                        "Action": "route53:ListResourceRecordSets",
                        "Resource": pulumi.Output.concat("arn:aws:route53:::hostedzone/", args.dns_zone_id),
                    },
                    {
                        "Effect": "Allow",
                        "Action": "route53:ChangeResourceRecordSets",
                        "Resource": pulumi.Output.concat("arn:aws:route53:::hostedzone/", args.dns_zone_id),
                        "Condition": ACME_RECORDS_ONLY,
                    },
                    {"Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
                ],
            }
        ),
        opts=aws_opts,
    )
    identity = aws.eks.PodIdentityAssociation(
        f"{name}-cert-manager-identity",
        cluster_name=cluster.cluster.name,
        namespace="cert-manager",
        service_account="cert-manager",
        role_arn=role.arn,
        opts=aws_opts,
    )
    release = k8s.helm.v3.Release(
        f"{name}-cert-manager",
        name="cert-manager",
        chart="cert-manager",
        version=CERT_MANAGER_CHART_VERSION,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo="https://charts.jetstack.io"),
        namespace=namespace.metadata.name,
        values={"crds": {"enabled": True}, "serviceAccount": {"name": "cert-manager"}},
        # Pod Identity is injected only when a pod is admitted: the association (and the agent that serves its
        # credentials) must exist before cert-manager's pods start, or they get no AWS credentials and every
        # DNS-01 challenge fails.
        opts=pulumi.ResourceOptions.merge(
            k8s_opts,
            pulumi.ResourceOptions(depends_on=[cluster.node_group, identity, cluster.pod_identity_agent]),
        ),
    )
    return k8s.apiextensions.CustomResource(
        f"{name}-acme-issuer",
        api_version="cert-manager.io/v1",
        kind="ClusterIssuer",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=ACME_ISSUER),
        spec={
            "acme": {
                "server": ACME_SERVER,
                "email": args.acme_email,
                "privateKeySecretRef": {"name": f"{ACME_ISSUER}-account"},
                "solvers": [
                    {
                        "dns01": {
                            # Partner domains delegate _acme-challenge to a name in the platform zone (CNAME).
                            "cnameStrategy": "Follow",
                            "route53": {"region": "us-east-1", "hostedZoneID": args.dns_zone_id},
                        }
                    }
                ],
            }
        },
        opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[release])),
    )


def build_certificate_sync(name: str, args: RegionalDeploymentArgs, cluster: RegionCluster) -> KongCertificateSync:
    """The job that serves the region's cert-manager certificates from Kong (it runs from the services image)."""
    return KongCertificateSync(
        f"{name}-cert-sync",
        KongCertificateSyncArgs(
            region_code=args.region.code,
            namespace=cluster.namespace.metadata.name,
            image=args.meter_image,
            kong_admin_url=args.kong_admin_url,
            kong_admin_token=args.kong_admin_token,
        ),
        opts=pulumi.ResourceOptions.merge(
            cluster.k8s_opts, pulumi.ResourceOptions(depends_on=[cluster.namespace, cluster.node_group])
        ),
    )
