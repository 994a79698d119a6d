"""The platform repository, read through one object: catalogs, tier table, API catalog, specs and stack files.

Every reader (the Pulumi program, the planner, policies, changes, listings, ci-preview) asks a `Repo`, which
parses each file once per run, checks each spec against the catalog once and keeps the residency warnings so
they are reported once. A `Repo` never writes: changes write files and start a fresh `Repo` to read them back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.stackconfig import ConfigDeclaration, StackConfig, declarations, load_stack_config
from foundation.errors import InputError
from foundation.naming import PARTNER_ID_PATTERN, RESERVED_PARTNER_IDS
from foundation.stacks import (
    StackKind,
    StackName,
    integration_stack,
    parse_stack_name,
    partner_stack,
    region_stack,
)
from foundation.yamlio import load_yaml_file, read_bounded

if TYPE_CHECKING:
    from gateway.model import ApiCatalog
    from integrations.review import ReviewRecord
    from integrations.rules import ReviewRules
    from integrations.spec import IntegrationSpec
    from partners.prices import PriceBook
    from partners.spec import PartnerSpec
    from partners.tiers import TierTable
    from regions.catalog import Catalog
    from regions.telephony import TelephonyCatalog

STATE_DIR = ".platformctl"


class Repo:
    """One run's view of the repository at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.warnings: list[str] = []
        """Residency warnings met while reading specs, each once, in the order met."""
        self._catalog: Catalog | None = None
        self._tiers: TierTable | None = None
        self._prices: PriceBook | None = None
        self._apis: ApiCatalog | None = None
        self._telephony: TelephonyCatalog | None = None
        self._specs: dict[str, PartnerSpec] = {}
        self._spec_warnings: dict[str, list[str]] = {}
        self._spec_bytes: dict[str, bytes] = {}
        self._configs: dict[StackName, StackConfig] = {}
        self._partner_ids: tuple[str, ...] | None = None
        self._domains: tuple[dict[str, tuple[str, str]], dict[str, str]] | None = None
        self._integrations: dict[str, IntegrationSpec] = {}
        self._records: dict[str, ReviewRecord | None] = {}
        self._rules: ReviewRules | None = None
        self._documents: dict[str, Any] = {}
        self._given_specs: dict[Path, PartnerSpec] = {}

    def __repr__(self) -> str:
        return f"Repo({str(self.root)!r})"

    # ------------------------------------------------------------------ paths

    @property
    def stacks_dir(self) -> Path:
        return self.root / "stacks"

    @property
    def partners_dir(self) -> Path:
        return self.root / "partners"

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def partner_file(self, partner_id: str) -> Path:
        return self.partners_dir / f"{partner_id}.yaml"

    def stack_file(self, stack: StackName) -> Path:
        return stack.config_file(self.root)

    def display(self, path: Path) -> str:
        """A path as shown in messages: relative to the repository when inside it."""
        try:
            return str(path.absolute().relative_to(self.root.absolute()))
        except ValueError:
            try:
                return str(path.resolve().relative_to(self.root.resolve()))
            except ValueError:
                return str(path)

    # ------------------------------------------------------------------ catalogs

    def catalog(self) -> Catalog:
        if self._catalog is None:
            from regions.catalog import load_catalog

            self._catalog = load_catalog(self.root / "regions")
        return self._catalog

    def tiers(self) -> TierTable:
        if self._tiers is None:
            from partners.tiers import load_tiers, tiers_file

            self._tiers = load_tiers(tiers_file(self.root))
        return self._tiers

    def prices(self) -> PriceBook:
        """The price book, partners/prices.yaml (per-minute rate and base fee by currency and tier)."""
        if self._prices is None:
            from partners.prices import PRICES_FILE, load_prices

            self._prices = load_prices(self.partners_dir / PRICES_FILE.name)
        return self._prices

    def api_catalog(self) -> ApiCatalog:
        if self._apis is None:
            from gateway.model import api_catalog_file, load_api_catalog

            self._apis = load_api_catalog(api_catalog_file(self.root))
        return self._apis

    def telephony(self) -> TelephonyCatalog:
        if self._telephony is None:
            from regions.telephony import load_telephony

            self._telephony = load_telephony(self.catalog(), self.root / "regions")
        return self._telephony

    def document(self, relative: str) -> Any:
        """A data file of the repository (`gateway/apis.yaml`) as parsed YAML, as it is written (once per run): for
        checks that report the file's own field paths."""
        if relative not in self._documents:
            self._documents[relative] = load_yaml_file(self.root / relative, relative)
        return self._documents[relative]

    # ------------------------------------------------------------------ partners

    def spec_at(self, path: Path) -> PartnerSpec:
        """A spec file given by its path (a command-line argument, inside the repository or not), validated for its
        shape (once per run; `check_spec` checks it against the catalog)."""
        key = path.absolute()
        if key not in self._given_specs:
            from partners.spec import load_spec

            self._given_specs[key] = load_spec(path, self.display(path))
        return self._given_specs[key]

    def partner_spec_files(self) -> list[Path]:
        """partners/<id>.yaml files (not the tier table or other data files, not examples)."""
        return sorted(
            p
            for p in self.partners_dir.glob("*.yaml")
            if p.stem not in RESERVED_PARTNER_IDS and not p.name.startswith(".")
        )

    def partner_ids(self) -> list[str]:
        """Ids of the partners that have a spec file (listed once per run: every stack's policy context asks);
        a file whose name is not an id is bad input."""
        if self._partner_ids is None:
            ids = []
            for path in self.partner_spec_files():
                if not re.fullmatch(PARTNER_ID_PATTERN, path.stem):
                    raise InputError.single(
                        self.display(path), "", "file name is not a partner id (partners/<id>.yaml)"
                    )
                ids.append(path.stem)
            self._partner_ids = tuple(ids)
        return list(self._partner_ids)

    def spec_bytes(self, partner_id: str) -> bytes:
        """The spec file's bytes as read (and parsed) in this run."""
        self.spec(partner_id)
        return self._spec_bytes[partner_id]

    def spec(self, partner_id: str) -> PartnerSpec:
        """partners/<id>.yaml, validated and checked against the catalog (once per run)."""
        cached = self._specs.get(partner_id)
        if cached is not None:
            return cached
        from partners.spec import parse_spec_bytes

        partner_stack(partner_id)  # validates the id before it reaches the filesystem
        path = self.partner_file(partner_id)
        display = f"partners/{partner_id}.yaml"
        if path.is_symlink():
            raise InputError.single(display, "", "a partner spec must be a regular file, not a symbolic link")
        raw = read_bounded(path, display)
        spec = parse_spec_bytes(raw, display)
        if spec.id != partner_id:
            raise InputError.single(display, "id", f"is {spec.id!r} but the file is named {partner_id}.yaml")
        self._spec_warnings[partner_id] = self.check_spec(spec, display)
        self._specs[partner_id] = spec
        self._spec_bytes[partner_id] = raw
        return spec

    def check_spec(self, spec: PartnerSpec, source: str) -> list[str]:
        """Catalog check of a spec (home region, countries, residency); returns its warnings, kept once."""
        from partners.spec import check_against_catalog

        warnings = check_against_catalog(spec, self.catalog(), source)
        if spec.telephony is not None:
            from partners.telephony import check_telephony

            problems, more = check_telephony(spec, self.telephony(), self.launched_countries(spec.home_region), source)
            if problems:
                raise InputError(problems)
            warnings += more
        if spec.integrations:
            warnings += self.check_installs(spec, source)
        for warning in warnings:
            if warning not in self.warnings:
                self.warnings.append(warning)
        return warnings

    # ------------------------------------------------------------------ integrations

    @property
    def integrations_dir(self) -> Path:
        return self.root / "integrations"

    def integration_file(self, integration_id: str) -> Path:
        return self.integrations_dir / f"{integration_id}.yaml"

    def review_file(self, integration_id: str) -> Path:
        return self.integrations_dir / f"{integration_id}.review.yaml"

    def review_rules(self) -> ReviewRules:
        if self._rules is None:
            from integrations.rules import load_rules, rules_file

            self._rules = load_rules(rules_file(self.root))
        return self._rules

    def integration_ids(self) -> list[str]:
        """Ids of the integrations that have a spec file (integrations/<id>.yaml, not review records or rules)."""
        if not self.integrations_dir.is_dir():
            return []
        ids = []
        for path in sorted(self.integrations_dir.glob("*.yaml")):
            if path.name.endswith(".review.yaml") or path.stem in RESERVED_PARTNER_IDS or path.name.startswith("."):
                continue
            if not re.fullmatch(PARTNER_ID_PATTERN, path.stem):
                raise InputError.single(self.display(path), "", "file name is not an integration id")
            ids.append(path.stem)
        return ids

    def integration(self, integration_id: str) -> IntegrationSpec:
        """integrations/<id>.yaml, validated (shape; the review judged the rest when it was submitted)."""
        cached = self._integrations.get(integration_id)
        if cached is not None:
            return cached
        from integrations.spec import parse_integration_bytes

        integration_stack(integration_id)  # validates the id before it reaches the filesystem
        display = f"integrations/{integration_id}.yaml"
        path = self.integration_file(integration_id)
        if path.is_symlink():
            raise InputError.single(display, "", "an integration spec must be a regular file, not a symbolic link")
        spec = parse_integration_bytes(read_bounded(path, display), display)
        if spec.id != integration_id:
            raise InputError.single(display, "id", f"is {spec.id!r} but the file is named {integration_id}.yaml")
        self._integrations[integration_id] = spec
        return spec

    def review_record(self, integration_id: str) -> ReviewRecord | None:
        """integrations/<id>.review.yaml, or None when the integration was never submitted through platformctl."""
        if integration_id not in self._records:
            from integrations.review import parse_record

            integration_stack(integration_id)
            path = self.review_file(integration_id)
            display = f"integrations/{integration_id}.review.yaml"
            record = parse_record(read_bounded(path, display), display) if path.is_file() else None
            if record is not None and record.id != integration_id:
                raise InputError.single(display, "id", f"is {record.id!r}, not {integration_id!r}")
            self._records[integration_id] = record
        return self._records[integration_id]

    def installations(self, integration_id: str) -> list[str]:
        """Ids of the active partners whose spec installs the integration."""
        return [
            pid
            for pid in self.partner_ids()
            if integration_id in self.spec(pid).integrations and not self.offboarded_on(pid)
        ]

    def integration_inputs(self, integration_id: str) -> bytes:
        """Everything of the repository an integration stack's plan reads besides stack files and catalogs: its
        spec, its review record and who installed it (the plan cache's key)."""
        parts = [read_bounded(self.integration_file(integration_id), f"integrations/{integration_id}.yaml")]
        if self.review_file(integration_id).is_file():
            parts.append(read_bounded(self.review_file(integration_id), f"integrations/{integration_id}.review.yaml"))
        parts.append(",".join(self.installations(integration_id)).encode())
        # The installing partners' currencies and home regions price and place its INSTALLS rows.
        parts += [self.spec_bytes(pid) for pid in self.installations(integration_id)]
        return b"\0".join(parts)

    def partner_inputs(self, partner_id: str) -> bytes:
        """What a partner stack's plan reads besides stack files and catalogs: its spec and the specs of the
        integrations it installs (their prices are its INSTALLS rows)."""
        spec = self.spec(partner_id)
        parts = [self.spec_bytes(partner_id)]
        parts += [read_bounded(self.integration_file(i), f"integrations/{i}.yaml") for i in spec.integrations]
        return b"\0".join(parts)

    def check_installs(self, spec: PartnerSpec, source: str) -> list[str]:
        """A partner installs only published integrations offered in its home region (exit 2 otherwise)."""
        from foundation.errors import Problem

        problems: list[Problem] = []
        warnings: list[str] = []
        for index, integration_id in enumerate(spec.integrations):
            where = f"integrations.{index}"
            if integration_id not in self.integration_ids():
                problems.append(Problem(source, where, f"no integration {integration_id!r} in the marketplace"))
                continue
            record = self.review_record(integration_id)
            state = record.state if record is not None else "unreviewed"
            if state == "suspended":
                warnings.append(f"{source}: {where}: {integration_id} is suspended: its routes answer 503")
            elif state != "published":
                problems.append(Problem(source, where, f"{integration_id!r} is not published (it is {state})"))
                continue
            integration = self.integration(integration_id)
            offered = integration.regions
            prices = integration.pricing.monthly if integration.pricing else None
            if prices is not None and spec.billing.currency not in prices:
                problems.append(
                    Problem(
                        source,
                        where,
                        f"{integration_id!r} is priced in {', '.join(sorted(prices))}, not in the partner's billing "
                        f"currency {spec.billing.currency}",
                    )
                )
            if spec.home_region not in offered:
                problems.append(
                    Problem(
                        source,
                        where,
                        f"{integration_id!r} is not offered in {spec.home_region} (offered in: {', '.join(offered)})",
                    )
                )
        if problems:
            raise InputError(problems)
        return warnings

    def spec_warnings(self, partner_id: str) -> list[str]:
        self.spec(partner_id)
        return list(self._spec_warnings[partner_id])

    def partner_domains(self) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
        """Every partner's (domain, spec file) by id, and by id the reason a spec could not be read: the fleet's
        domain table, built once per run (each partner stack's policies compare against all of it)."""
        if self._domains is None:
            domains: dict[str, tuple[str, str]] = {}
            unreadable: dict[str, str] = {}
            for partner_id in self.partner_ids():
                try:
                    domains[partner_id] = (self.spec(partner_id).domain, f"partners/{partner_id}.yaml")
                except InputError as exc:
                    unreadable[partner_id] = str(exc.problems[0])
            self._domains = (domains, unreadable)
        return dict(self._domains[0]), dict(self._domains[1])

    def specs(self) -> dict[str, PartnerSpec]:
        return {partner_id: self.spec(partner_id) for partner_id in self.partner_ids()}

    # ------------------------------------------------------------------ stacks

    def stack_names(self) -> list[StackName]:
        """Every stack that has a file in stacks/, in planning order."""
        names = [
            parse_stack_name(path.name.removeprefix("Pulumi.").removesuffix(".yaml"))
            for path in self.stacks_dir.glob("Pulumi.*.yaml")
        ]
        return sorted(names, key=lambda s: (s.rank, s.subject))

    def has_stack(self, stack: StackName) -> bool:
        return self.stack_file(stack).is_file()

    def stack_config(self, stack: StackName) -> StackConfig:
        config = self._configs.get(stack)
        if config is None:
            config = self._configs[stack] = load_stack_config(self.root, stack)
        return config

    def declarations(self) -> dict[str, ConfigDeclaration]:
        return dict(declarations(self.root))

    def launched_countries(self, region: str) -> list[str]:
        stack = region_stack(region)
        if not self.has_stack(stack):
            return []
        return list(self.stack_config(stack).values.get("platform:launchedCountries") or [])

    def offboarded_on(self, partner_id: str) -> str:
        stack = partner_stack(partner_id)
        if not self.has_stack(stack):
            return ""
        return str(self.stack_config(stack).file_values.get("platform:offboardedOn") or "")

    def dependencies(self, stack: StackName) -> list[StackName]:
        """The stacks whose outputs `stack` reads."""
        if stack.kind is StackKind.GLOBAL:
            return []
        global_stack = parse_stack_name("global")
        if stack.kind is StackKind.REGION:
            return [global_stack]
        if stack.kind is StackKind.INTEGRATION:
            # Its offered regions, and its developer's home region (the developer's warehouse rows are written there).
            from integrations.payouts import developer_home

            spec = self.integration(stack.subject)
            home, _ = developer_home(self.catalog(), spec)
            return [global_stack, *(region_stack(r) for r in dict.fromkeys((*spec.regions, home)))]
        return [global_stack, region_stack(self.spec(stack.subject).home_region)]


_ACTIVE: dict[Path, Repo] = {}


@contextmanager
def active(repo: Repo) -> Iterator[Repo]:
    """Make `repo` the one the Pulumi program reads while planning in this process (and in forked workers)."""
    key = repo.root.absolute()
    previous = _ACTIVE.get(key)
    _ACTIVE[key] = repo
    try:
        yield repo
    finally:
        if previous is None:
            _ACTIVE.pop(key, None)
        else:
            _ACTIVE[key] = previous


def for_program(root: Path) -> Repo:
    """The program's reader: the planner's `Repo` for this root when one is active, else a new one."""
    return _ACTIVE.get(root.absolute()) or Repo(root)
