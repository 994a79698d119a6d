"""What a real deploy of an `integration-<id>` stack would run that is still a placeholder or not pinned: the egress
proxy image (integrations/rules.yaml, the same for every integration) and the services image its conformance job
runs (stack config `platform:servicesImage`, the meter's setting). Called by `validate --for-deploy` and, for the
proxy, by `integration publish`: a digest that is one hex digit repeated names no image anyone published."""

from __future__ import annotations

from collections.abc import Iterator

from fleet.repo import Repo
from foundation.errors import InputError, Problem
from foundation.stacks import StackName
from integrations.rules import ReviewRules
from policies.integrations import DIGEST_IMAGE

RULES_DISPLAY = "integrations/rules.yaml"
SERVICES_IMAGE = "platform:servicesImage"


def placeholder_digest(image: str) -> bool:
    """`...@sha256:000...0` and the like: a stand-in, not a published image."""
    digest = image.rpartition("@sha256:")[2]
    return len(set(digest)) <= 1


def proxy_problems(rules: ReviewRules) -> Iterator[Problem]:
    image = rules.egress_proxy.image
    if placeholder_digest(image):
        yield Problem(
            RULES_DISPLAY,
            "egress_proxy.image",
            f"{image!r} is a placeholder digest: pin the Squid image's published digest "
            "(`docker buildx imagetools inspect docker.io/ubuntu/squid:<tag>`)",
        )


def check_publishable(rules: ReviewRules) -> None:
    """`integration publish` refuses to deploy a placeholder proxy image (exit 2 naming the file and field)."""
    problems = list(proxy_problems(rules))
    if problems:
        raise InputError(problems)


def stack_problems(repo: Repo, stack: StackName) -> Iterator[Problem]:
    """Every image an integration stack's deploy would run that is a placeholder or not pinned by digest (read
    through `repo`, the one reader)."""
    yield from proxy_problems(repo.review_rules())
    config = repo.stack_config(stack)
    image = config.values.get(SERVICES_IMAGE)
    where = f"stacks/{repo.stack_file(stack).name}"
    origin = "Pulumi.yaml's default" if SERVICES_IMAGE not in config.file_values else "set in this file"
    if not isinstance(image, str) or not DIGEST_IMAGE.fullmatch(image):
        yield Problem(
            where,
            SERVICES_IMAGE,
            f"{image!r} ({origin}) is not pinned by digest: the conformance job runs it in every offered region; "
            "set REPOSITORY@sha256:<64 hex> (the digest `docker buildx imagetools inspect` prints for the tag)",
        )
    elif placeholder_digest(image):
        yield Problem(where, SERVICES_IMAGE, f"{image!r} is a placeholder digest, not a published image")
