"""The plain values an integration's sandbox objects hold: the namespaces' quotas, the pods' security contexts, the
egress proxy's Squid configuration and the conformance job's command (components/integration_sandbox.py)."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from integrations.rules import ReviewRules


def sandbox_quota(rules: ReviewRules) -> dict[str, str]:
    caps = rules.caps
    return {
        "requests.cpu": caps.cpu,
        "limits.cpu": caps.cpu,
        "requests.memory": caps.memory,
        "limits.memory": caps.memory,
        "requests.storage": caps.storage,
        "persistentvolumeclaims": "1",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }


def system_quota(rules: ReviewRules) -> dict[str, str]:
    """Room for the proxy and one conformance job (each sized like the proxy)."""
    from integrations.rules import quantity

    cpu = quantity(rules.egress_proxy.resources["cpu"]) * 2
    memory = quantity(rules.egress_proxy.resources["memory"]) * 2
    cpu_text = f"{int(cpu * 1000)}m"
    memory_text = f"{int(memory / 2**20)}Mi"
    return {
        "requests.cpu": cpu_text,
        "limits.cpu": cpu_text,
        "requests.memory": memory_text,
        "limits.memory": memory_text,
        "persistentvolumeclaims": "0",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }


def squid_config(hosts: tuple[str, ...], port: int) -> str:
    """Squid config allowing CONNECT to port 443 of exactly `hosts` and nothing else.

    `dstdomain -n`: an exact name (no leading dot) matches that host only, not its subdomains, and `-n` stops Squid
    from matching an IP-address request by its reverse DNS name (a PTR record the requester may control)."""
    lines = [
        f"http_port {port}",
        "pid_filename /var/run/squid/squid.pid",
        "cache deny all",
        "coredump_dir /var/run/squid",
        "access_log stdio:/dev/stdout",
        "cache_log stdio:/dev/stderr",
        "acl ssl_port port 443",
        "acl CONNECT method CONNECT",
        "http_access deny !CONNECT",
        "http_access deny !ssl_port",
    ]
    if hosts:
        lines += [f"acl allowed_hosts dstdomain -n {' '.join(hosts)}", "http_access allow CONNECT allowed_hosts"]
    lines += ["http_access deny all", ""]
    return "\n".join(lines)


def conformance_args(target: str, rules: ReviewRules) -> list[str]:
    bars = rules.conformance
    return [
        "conformance",
        "run",
        "--url",
        target,
        "--duration",
        str(bars.duration_seconds),
        "--min-rps",
        str(bars.min_rps),
        "--max-p95",
        str(bars.p95_seconds),
        "--max-error-rate",
        str(bars.max_error_rate),
    ]


def pod_security() -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=65532,
        run_as_group=65532,
        fs_group=65532,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
    )
