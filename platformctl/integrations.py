"""The marketplace's life cycle: submit (automated review) -> approve (human, per digest) -> publish -> suspend /
retire. Each step decides a `changes.Change` (files + stack operations) and is carried out under the integration's
lock by `changes.carry_out`, like onboarding.

`integrations/<id>.yaml` holds the spec bytes the review judged; `integrations/<id>.review.yaml` the verdicts, each
bound to the spec's digest (so an approval is for one exact spec and any later change needs a new one);
`stacks/Pulumi.integration-<id>.yaml` exists once the integration is published.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from fleet.repo import Repo
from foundation.errors import InputError
from foundation.stacks import StackName, integration_stack
from foundation.yamlio import read_bounded
from integrations.review import Approval, Automated, ReviewRecord, ReviewResult, review
from integrations.spec import IntegrationSpec, parse_integration_bytes
from platformctl.changes import Change, SpecInput

STACK_HEADER = "# Written by platformctl integration publish; the spec is integrations/{id}.yaml.\n"


def read_input(path: Path) -> SpecInput:
    return SpecInput(str(path), read_bounded(path, str(path)))


def lock_for(item: SpecInput) -> str:
    return str(integration_stack(parse_integration_bytes(item.raw, item.display).id))


def argument(integration_id: str) -> StackName:
    """An id from the command line, validated as a spec's id is (no path tricks reach the filesystem)."""
    try:
        return integration_stack(integration_id)
    except InputError:
        raise InputError.single(
            "arguments", "ID", f"{integration_id!r} is not an integration id (3-40 of a-z, 0-9, '-')"
        ) from None


def run_review(repo: Repo, spec: IntegrationSpec, source: str) -> ReviewResult:
    return review(
        spec,
        source,
        repo.review_rules(),
        repo.api_catalog(),
        repo.catalog(),
        repo.launched_countries,
        repo.partner_ids(),
        [repo.integration(i) for i in repo.integration_ids() if i != spec.id],
    )


def _existing(repo: Repo, integration_id: str) -> tuple[IntegrationSpec, ReviewRecord]:
    if not repo.integration_file(integration_id).is_file():
        raise InputError.single("arguments", "ID", f"no integration {integration_id!r} (submit it first)")
    record = repo.review_record(integration_id)
    if record is None:
        raise InputError.single(
            f"integrations/{integration_id}.review.yaml", "", "no review record: submit the spec again"
        )
    return repo.integration(integration_id), record


def _record_file(repo: Repo, change: Change, record: ReviewRecord) -> None:
    change.files[repo.review_file(record.id)] = record.dump()


def submit_change(repo: Repo, item: SpecInput, today: datetime.date) -> tuple[Change, ReviewResult]:
    """Validate and review a spec; write it with its review record. Any refusal: InputError, nothing written."""
    spec = parse_integration_bytes(item.raw, item.display)
    result = run_review(repo, spec, item.display)
    if result.problems:
        raise InputError(result.problems)
    previous = repo.review_record(spec.id) if repo.review_file(spec.id).is_file() else None
    if previous is not None and previous.state == "retired":
        raise InputError.single(item.display, "id", f"{spec.id!r} was retired; a new integration needs a new id")
    digest = spec.digest()
    automated = Automated(digest=digest, passed=tuple(result.passed), pending=tuple(result.pending), on=today)
    record = ReviewRecord(
        id=spec.id,
        state=previous.state if previous is not None else "submitted",
        automated=automated,
        approval=previous.approval if previous is not None and previous.approved(digest) else None,
        published_digest=previous.published_digest if previous is not None else None,
    )
    change = Change()
    change.files[repo.integration_file(spec.id)] = item.raw
    _record_file(repo, change, record)
    if previous is not None and previous.published_digest not in (None, digest):
        change.warnings.append(
            f"{spec.id}: the published spec changed: its stack does not plan until it is approved and published again"
        )
    change.notes.append(
        f"{spec.id}: automated review passed ({digest[:19]}...); pending: {', '.join(result.pending) or 'nothing'}"
    )
    return change, result


def approve_change(repo: Repo, integration_id: str, reviewer: str, today: datetime.date) -> Change:
    """Record the human review for the spec's current digest."""
    spec, record = _existing(repo, integration_id)
    digest = spec.digest()
    if record.automated.digest != digest:
        raise InputError.single(
            f"integrations/{integration_id}.yaml",
            "",
            "changed since its automated review: submit it again before approving",
        )
    if record.state == "retired":
        raise InputError.single("arguments", "ID", f"{integration_id!r} is retired")
    try:
        approval = Approval(digest=digest, reviewer=reviewer, on=today)
    except ValueError:
        raise InputError.single("arguments", "--reviewer", "a name of 1-80 letters, digits, spaces or ._@-") from None
    change = Change()
    _record_file(repo, change, record.model_copy(update={"approval": approval}))
    change.notes.append(f"{integration_id}: approved by {reviewer} for {digest[:19]}...")
    return change


def new_stack_text(spec: IntegrationSpec) -> bytes:
    from foundation.yamlio import dump_yaml

    return (STACK_HEADER.format(id=spec.id) + dump_yaml({"config": {}})).encode("utf-8")


def publish_change(repo: Repo, integration_id: str) -> Change:
    """Publish (or resume) an approved digest: the stack file, then preview + up."""
    spec, record = _existing(repo, integration_id)
    digest = spec.digest()
    if record.state == "retired":
        raise InputError.single("arguments", "ID", f"{integration_id!r} is retired")
    if not record.approved(digest):
        why = (
            "it was never approved"
            if record.approval is None
            else f"the approval ({record.approval.digest[:19]}...) is for another version of the spec"
        )
        raise InputError.single(
            f"integrations/{integration_id}.yaml",
            "",
            f"digest {digest[:19]}... is not approved ({why}): run `platformctl integration approve "
            f"{integration_id} --reviewer NAME`",
        )
    from platformctl.marketplace_readiness import check_publishable

    check_publishable(repo.review_rules())
    for region in spec.regions:
        from foundation.stacks import region_stack

        if not repo.has_stack(region_stack(region)):
            raise InputError.single(
                f"integrations/{integration_id}.yaml", "regions", f"region {region} has no stack file"
            )
    stack = integration_stack(integration_id)
    change = Change(stacks=[stack], compare=repo.has_stack(stack))
    _record_file(repo, change, record.model_copy(update={"state": "published", "published_digest": digest}))
    if not repo.has_stack(stack):
        change.files[repo.stack_file(stack)] = new_stack_text(spec)
    change.operations.append((stack, "up"))
    what = "resumed" if record.state == "suspended" else "published"
    change.notes.append(f"{integration_id}: {what} in {', '.join(spec.regions)}")
    return change


def suspend_change(repo: Repo, integration_id: str) -> Change:
    """Out of service at once: its routes answer 503, its sandboxes scale to zero; installations are kept."""
    _, record = _existing(repo, integration_id)
    if record.state != "published":
        raise InputError.single("arguments", "ID", f"{integration_id!r} is {record.state}, not published")
    stack = integration_stack(integration_id)
    change = Change(stacks=[stack], compare=True)
    _record_file(repo, change, record.model_copy(update={"state": "suspended"}))
    change.operations.append((stack, "up"))
    change.notes.append(
        f"{integration_id}: suspended: its routes answer 503, installations are kept (publish resumes it)"
    )
    return change


def retire_change(repo: Repo, integration_id: str) -> Change:
    """Remove it once no partner has it installed: the stack is destroyed, the spec and record stay as history."""
    _, record = _existing(repo, integration_id)
    if record.state == "retired":
        raise InputError.single("arguments", "ID", f"{integration_id!r} is already retired")
    installed = repo.installations(integration_id)
    if installed:
        raise InputError.single(
            "arguments",
            "ID",
            f"{integration_id!r} is still installed by {', '.join(installed)}: they must remove it from their "
            "specs first",
        )
    stack = integration_stack(integration_id)
    change = Change(stacks=[])
    _record_file(repo, change, record.model_copy(update={"state": "retired"}))
    if repo.has_stack(stack):
        change.operations.append((stack, "destroy"))
        change.delete_after_apply.append(repo.stack_file(stack))
    change.notes.append(f"{integration_id}: retired; its stack is destroyed and its stack file removed")
    return change


def status(repo: Repo, integration_id: str | None = None) -> list[dict[str, Any]]:
    """One row per integration: state, digests, approval, installations."""
    rows = []
    for iid in [integration_id] if integration_id else repo.integration_ids():
        argument(iid)
        spec, record = _existing(repo, iid)
        digest = spec.digest()
        rows.append(
            {
                "id": iid,
                "state": record.state,
                "digest": digest,
                "approved": record.approved(digest),
                "reviewer": record.approval.reviewer if record.approval else "",
                "published_digest": record.published_digest or "",
                "regions": list(spec.regions),
                "installations": repo.installations(iid),
            }
        )
    return rows
