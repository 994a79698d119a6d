"""The marketplace listing's figures from the regional warehouses: each integration's latest conformance result per
region (CONFORMANCE_RESULTS, written by the conformance job after each deploy) and its install count (INSTALLS rows
not removed), plus conformance results given as files (`--results DIR`, the job's printed JSON as `<id>.json`).

Rows are data from outside the tool: only rows of a listed integration and one of its offered regions are kept
(any other id or region is dropped, never rendered), numbers are read as numbers, and the pages escape every text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from foundation.errors import InputError, PlatformError
from foundation.marketplace_queries import current_installs_sql, latest_conformance_sql
from foundation.yamlio import read_bounded
from integrations.spec import IntegrationSpec

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
FILE_REGION = "unspecified"
"""Region shown for a result given as a file (the job's printed JSON names none unless it has `region`)."""


@dataclass(frozen=True)
class RegionResult:
    region: str
    """The region the sandbox ran in (one of the spec's regions, or FILE_REGION)."""
    passed: bool
    """All bars held."""
    p95_ms: float
    """95th-percentile latency, milliseconds."""
    requests_per_second: float
    """Completed requests per second."""
    error_rate: float
    """Share of failed requests, 0..1."""
    checked_at: str
    """When the run ended (ISO 8601)."""
    image_digest: str
    """sha256 of the image measured ('' when the row or file does not give one in that form)."""
    current_image: bool
    """The measured image is the spec's image (False: an earlier version was measured)."""

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Figures:
    conformance: dict[str, dict[str, RegionResult]] = field(default_factory=dict)
    """integration id -> region -> its latest result."""
    installers: dict[str, set[str]] = field(default_factory=dict)
    """integration id -> partners with it installed (not removed)."""

    def installs(self, integration_id: str) -> int:
        return len(self.installers.get(integration_id, ()))

    def keep_latest(self, integration_id: str, result: RegionResult) -> None:
        regions = self.conformance.setdefault(integration_id, {})
        known = regions.get(result.region)
        if known is None or (result.checked_at, result.image_digest) > (known.checked_at, known.image_digest):
            regions[result.region] = result


def image_digest_of(spec: IntegrationSpec) -> str:
    return spec.image.rpartition("@")[2]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return float(number) if number.is_finite() else None


def _time(value: Any) -> str | None:
    """A time as ISO 8601 in UTC (comparable as text), or None when it is not one."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.isoformat(timespec="seconds")


def read_warehouses(urls: Sequence[str], base: Path, specs: Mapping[str, IntegrationSpec]) -> Figures:
    """Figures of the listed integrations (`specs`) from every warehouse in `urls` (one per region, or the local
    embedded one); the latest result per integration and region over all of them."""
    from services import warehouse

    figures = Figures()
    for url in urls:
        if missing_local(url, base):
            continue  # the default local warehouse not made yet (check_local_warehouses refused any other)
        anchored = warehouse.anchored(url, base)
        conn = warehouse.connect(anchored)
        try:
            if anchored.startswith("local:"):
                warehouse.ensure_schema(conn)
            database = conn.database
            _conformance_rows(figures, _query(conn, latest_conformance_sql(database), "conformance results"), specs)
            for integration_id, partner_id in _query(conn, current_installs_sql(database), "installs"):
                if integration_id in specs and isinstance(partner_id, str):
                    figures.installers.setdefault(integration_id, set()).add(partner_id)
        finally:
            conn.close()
    return figures


def _query(conn: Any, sql: str, what: str) -> list[tuple[Any, ...]]:
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return list(cur.fetchall())
    except PlatformError:
        raise
    except Exception as exc:  # the driver's own errors (a missing table, a revoked grant): a runtime failure
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PlatformError(f"cannot read the {what} from the warehouse: {first}") from None


def _conformance_rows(figures: Figures, rows: Iterable[Sequence[Any]], specs: Mapping[str, IntegrationSpec]) -> None:
    for _, integration_id, region, checked_at, p95_ms, rps, error_rate, _, passed, digest in rows:
        spec = specs.get(integration_id) if isinstance(integration_id, str) else None
        if spec is None or region not in spec.regions or not isinstance(passed, bool):
            continue  # not a listed integration, or a region it is not offered in: nothing to show
        numbers = (_number(p95_ms), _number(rps), _number(error_rate))
        when = _time(checked_at)
        if any(n is None for n in numbers) or when is None:
            continue
        p95, per_second, errors = (float(n or 0.0) for n in numbers)
        digest_text = digest if isinstance(digest, str) and DIGEST.fullmatch(digest) else ""
        figures.keep_latest(
            integration_id,
            RegionResult(
                region, passed, p95, per_second, errors, when, digest_text, digest_text == image_digest_of(spec)
            ),
        )


def check_warehouse_urls(urls: Sequence[str]) -> None:
    """The URLs' form, before anything is made (their parts are checked when each is opened)."""
    for url in urls:
        if not url.startswith(("local:", "snowflake://")):
            # The URL is not echoed: a mistyped one may carry a password.
            raise InputError.single(
                "--warehouse", "", "must be local:DIR or snowflake://ACCOUNT/DATABASE?user=&role=&warehouse="
            )


def missing_local(url: str, base: Path) -> bool:
    """A `local:DIR` warehouse whose directory is not there (reading it would make an empty one)."""
    from services import warehouse

    anchored = warehouse.anchored(url, base)
    return anchored.startswith("local:") and not Path(anchored.removeprefix("local:")).is_dir()


def check_local_warehouses(urls: Sequence[str], base: Path) -> None:
    """A `local:DIR` given that is not there is a mistyped path, not an empty region: refused (nothing is made).
    The repository's default one not made yet is read as nothing measured (read_warehouses skips it)."""
    from services import warehouse

    for url in urls:
        if url != warehouse.DEFAULT_URL and missing_local(url, base):
            raise InputError.single(
                "--warehouse", "", f"{url}: no warehouse there (platformctl warehouse sync makes a local one)"
            )


def check_results_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise InputError.single(str(folder), "--results", "is not a folder of conformance results (<id>.json)")


def read_results_folder(folder: Path, figures: Figures, specs: Mapping[str, IntegrationSpec]) -> None:
    """Add the results given as files: `<id>.json`, the conformance job's printed JSON (`platform-services
    conformance run` stdout). A folder that is not there is bad input (exit 2), not an empty listing."""
    check_results_folder(folder)
    for integration_id, spec in specs.items():
        path = folder / f"{integration_id}.json"
        if not path.is_file():
            continue
        try:
            doc = json.loads(read_bounded(path, str(path)))
        except ValueError:
            raise InputError.single(str(path), "", "not a JSON conformance result") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("passed"), bool):
            raise InputError.single(str(path), "passed", "a conformance result has a boolean `passed`")
        numbers = {key: _number(doc.get(key, 0)) for key in ("p95_seconds", "rps", "error_rate")}
        for key, value in numbers.items():
            if value is None:
                raise InputError.single(str(path), key, "must be a number")
        when = _time(doc.get("checked_at", "")) or ""
        region = doc.get("region") if doc.get("region") in spec.regions else FILE_REGION
        given_digest = doc.get("image_digest")
        digest = given_digest if isinstance(given_digest, str) and DIGEST.fullmatch(given_digest) else ""
        figures.keep_latest(
            integration_id,
            RegionResult(
                region=str(region),
                passed=doc["passed"],
                p95_ms=round(float(numbers["p95_seconds"] or 0.0) * 1000, 1),
                requests_per_second=float(numbers["rps"] or 0.0),
                error_rate=float(numbers["error_rate"] or 0.0),
                checked_at=when,
                image_digest=digest,
                current_image=digest == image_digest_of(spec),
            ),
        )


def summary(results: Mapping[str, RegionResult] | None) -> dict[str, Any] | None:
    """marketplace.json's `conformance`: passed only when every region's latest run passed; None: never measured."""
    if not results:
        return None
    ordered = [results[region] for region in sorted(results)]
    return {
        "passed": all(r.passed for r in ordered),
        "checked_at": max(r.checked_at for r in ordered),
        "regions": {r.region: r.public() for r in ordered},
    }
