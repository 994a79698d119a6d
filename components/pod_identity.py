"""The trust policy of every IAM role that EKS Pod Identity hands to pods (tenant workloads, cert-manager, payouts)."""

from __future__ import annotations

import json

POD_IDENTITY_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
)
"""The Pod Identity agent assumes the role and tags the session (AWS EKS user guide, "Pod Identity")."""
