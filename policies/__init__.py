"""Compliance and isolation rules, written once as pure functions over a stack's resources.

The offline plan (`platformctl plan`) and the pulumi-policy pack (`PulumiPolicy.yaml`, `__main__.py` here)
both evaluate `policies.rules.POLICIES`.
"""
