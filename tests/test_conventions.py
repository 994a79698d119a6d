"""Conventions are defined once and imported: no module retypes an id pattern, a key format, a name prefix, a host
name or a callback path that another module defines.

Every non-test module's string literals and f-strings are read from its syntax tree (docstrings and comments are
prose, not conventions, and are skipped); an f-string's placeholders read as `{}`, so `f"meter.{code}.{zone}"` is
`meter.{}.{}` whatever its variables are called. Each convention's detector is matched against that text; only the
module that defines the convention may contain it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT


@dataclass(frozen=True)
class Convention:
    name: str
    """What it is, for the message."""
    detector: re.Pattern[str]
    """Matches a literal (f-string placeholders as `{}`) that spells the convention out."""
    defined_in: frozenset[str]
    """The modules that define it (repository-relative paths)."""
    use: str
    """What to import instead."""


NAMING = "foundation/naming.py"
STACKS = "foundation/stacks.py"

CONVENTIONS = (
    Convention(
        "the partner-id pattern",
        # the body `[a-z0-9-]{1,38}` and near variants ({0,38}, {1,39}), anchored or not
        re.compile(r"a-z0-9-\]\{[01],3[89]\}"),
        frozenset({NAMING}),
        "foundation.naming.PARTNER_ID / PARTNER_ID_PATTERN / is_partner_id",
    ),
    Convention(
        "the Stripe transfer idempotency key (payout:<partner>:<period>)",
        re.compile(r"^payout:(\{\}|$)"),
        frozenset({"services/payouts/stripe_gateway.py"}),
        "services.payouts.stripe_gateway (the Payee's key)",
    ),
    Convention(
        "the Twilio subaccount name prefix (pctl:<partner>)",
        re.compile(r"^pctl(:|$)"),
        frozenset({NAMING}),
        "foundation.naming.TWILIO_NAME_PREFIX / twilio_subaccount_name",
    ),
    Convention(
        "the meter's Twilio status callback path (/twilio/<partner>/status)",
        re.compile(r"/twilio/(\{|\[|[a-z][a-z0-9-]*/status)"),
        frozenset({NAMING}),
        "foundation.naming.twilio_status_callback_path / TWILIO_STATUS_CALLBACK_TEMPLATE / _ROUTE",
    ),
    Convention(
        "the region's statements bucket name (<prefix>-<region>-statements)",
        re.compile(r"\{\}-\{\}-statements|arn:aws:s3:::\{\}-\{\}-"),
        frozenset(),
        "the regional deployment's bucket names (one definition per purpose)",
    ),
    Convention(
        "the region's meter and voice host names (meter.<region>.<zone>, voice.<region>.<zone>)",
        re.compile(r"(^|//)(meter|voice)\.\{\}\.\{\}"),
        frozenset({NAMING}),
        "foundation.naming.meter_host / voice_host",
    ),
    Convention(
        "the DNS-01 delegation and domain proof names (_acme-challenge.<...>, _platform-challenge.<domain>)",
        re.compile(r"^_(acme|platform)-challenge\.\{\}"),
        frozenset({"gateway/tls.py"}),
        "gateway.tls.acme_delegation_target / challenge_record",
    ),
    Convention(
        "a tenant's namespace, Kong consumer or ACL group (partner-<id>, tier-<tier>)",
        re.compile(r"(^|:)(partner|tier)-\{\}$"),
        frozenset({NAMING, STACKS}),
        "foundation.naming.partner_namespace / tier_acl_group (or foundation.stacks.partner_stack for a stack)",
    ),
    Convention(
        "an integration's namespace, ACL group or installation consumer (integration-<id>...)",
        re.compile(r"^integration-\{\}(-system|\.\{\})?$"),
        frozenset({NAMING, STACKS}),
        "foundation.naming.integration_namespace / integration_acl_group / installation_consumer",
    ),
    Convention(
        "Snowflake identifiers (PARTNER_<ID>, PLATFORM_<REGION>)",
        re.compile(r"^(PARTNER|PLATFORM)_\{\}"),
        frozenset({NAMING}),
        "foundation.naming.partner_schema / partner_reader_role / region_database / ...",
    ),
)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
        # an attribute docstring: a bare string right after an assignment
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(node, field, None)
            if not isinstance(statements, list):
                continue
            for statement in statements:
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                    ids.add(id(statement.value))
    return ids


def literals(source: str) -> Iterator[tuple[str, int]]:
    """(text, line) of each string literal and f-string that is not a docstring; placeholders read as `{}`."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    inside_fstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    inside_fstrings.add(id(value))
                    parts.append(value.value)
                else:
                    parts.append("{}")
            yield "".join(parts), node.lineno
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if id(node) not in skip and id(node) not in inside_fstrings:
            yield node.value, node.lineno


def retypings(source: str) -> Iterator[tuple[Convention, str, int]]:
    for text, line in literals(source):
        for convention in CONVENTIONS:
            if convention.detector.search(text):
                yield convention, text, line


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("tests/", ".")) or "/." in relative or "site-packages" in relative:
            continue
        yield relative, path


def test_conventions_are_imported_not_retyped() -> None:
    found = []
    for relative, path in modules():
        for convention, text, line in retypings(path.read_text(encoding="utf-8")):
            if relative in convention.defined_in:
                continue
            found.append(f"{relative}:{line}: {text!r} retypes {convention.name}; import {convention.use}")
    assert not found, "\n".join(found)


def test_each_convention_is_found_where_it_is_defined() -> None:
    """A detector that matches nothing in its own definition has drifted from it (and would pass anything)."""
    for convention in CONVENTIONS:
        if not convention.defined_in:
            continue
        texts = [text for module in convention.defined_in for text, _ in literals((ROOT / module).read_text())]
        assert any(convention.detector.search(text) for text in texts), convention.name


def test_the_scan_sees_retypings_that_the_old_prefix_check_missed() -> None:
    source = '''
import re
"""A module docstring may say /twilio/<partner>/status and payout:<partner>:<period>."""
OWNER = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
def f(partner_id, period, code, zone, prefix, ns):
    """So may a function's: meter.{code}.{zone}."""
    key = f"payout:{partner_id}:{period}"
    name = "pctl:" + partner_id
    url = f"https://meter.{code}.{zone}" + f"/twilio/{partner_id}/status"
    route = "~/twilio/[a-z][a-z0-9-]{1,38}[a-z0-9]/status$"
    bucket = f"arn:aws:s3:::{prefix}-{code}-statements"
    namespace = f'partner-{ns}'  # single quotes: the old check looked for f"partner-{ only
    schema = f"PARTNER_{partner_id.upper()}"
    return key, name, url, route, bucket, namespace, schema
'''
    found = sorted((convention.name.split(" (")[0], line) for convention, _, line in retypings(source))
    assert found == [
        ("Snowflake identifiers", 13),
        ("a tenant's namespace, Kong consumer or ACL group", 12),
        ("the Stripe transfer idempotency key", 7),
        ("the Twilio subaccount name prefix", 8),
        ("the meter's Twilio status callback path", 9),
        ("the meter's Twilio status callback path", 10),
        ("the partner-id pattern", 4),
        ("the partner-id pattern", 10),
        ("the region's meter and voice host names", 9),
        ("the region's statements bucket name", 11),
    ]
