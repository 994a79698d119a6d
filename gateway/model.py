"""Model and loader of `gateway/apis.yaml`."""

from __future__ import annotations

import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from foundation.errors import InputError
from foundation.yamlio import load_yaml_file, validation_problems
from gateway.cors import check_partner_template

APIS_FILE = Path(__file__).resolve().parent / "apis.yaml"
Version = Annotated[str, StringConstraints(pattern=r"^v[0-9]+$")]


def route_prefix(api: str, version: str) -> str:
    """The path a version's route matches: `/v2` for REST, `/v2/<api>` for the others."""
    return f"/{version}" if api == "rest" else f"/{version}/{api}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Upstream(_Frozen):
    host: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
    """Kubernetes service name in the upstream namespace."""
    port: int = Field(ge=1, le=65535)
    """Service port."""
    path: str = "/"
    """Path prefix on the upstream."""
    protocol: Literal["http", "https"] = "http"
    """Protocol Kong speaks to the upstream."""


class ApiVersion(_Frozen):
    sunset: datetime.date | None = None
    """Date the version stops working; set means deprecated."""
    successor: Version | None = None
    """Version clients should move to."""


class Api(_Frozen):
    upstream: Upstream
    """Where Kong forwards the API's traffic."""
    feature: str
    """Tier feature whose holders may call the API."""
    websocket: bool = False
    """The API streams over WebSocket upgrades."""
    versions: dict[Version, ApiVersion] = Field(min_length=1)
    """Published versions, each one route."""

    @model_validator(mode="after")
    def _successors_exist(self) -> Api:
        for name, version in self.versions.items():
            if version.successor and version.successor not in self.versions:
                raise ValueError(f"version {name} names unknown successor {version.successor}")
            if version.sunset and not version.successor:
                raise ValueError(f"deprecated version {name} needs a successor")
        return self


class CorrelationId(_Frozen):
    header_name: str
    """Header carrying the id."""
    generator: Literal["uuid", "uuid#counter", "tracker"]
    """How Kong generates ids."""
    echo_downstream: bool
    """Return the id to the client."""


class GlobalPlugins(_Frozen):
    correlation_id: CorrelationId
    """correlation-id plugin settings."""
    request_size_limit_mb: int = Field(ge=1, le=128)
    """Largest request body accepted."""
    cors_origins: tuple[str, ...] = Field(min_length=1)
    """Origins a partner's routes admit (gateway/cors.py): https://HOST templates of the partner's own dashboards,
    `{partner}` its id, `{zone}` the platform zone, `{domain}` its verified domain."""

    @field_validator("cors_origins")
    @classmethod
    def _origin_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            check_partner_template(pattern)
        return value


class Scope(_Frozen):
    description: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    """What the scope lets an integration do, in plain words (the listing shows it)."""
    api: str
    """The API whose routes it opens."""
    paths: tuple[Annotated[str, StringConstraints(pattern=r"^/[a-z0-9/_-]+$")], ...] = Field(min_length=1)
    """Path prefixes it opens (each under one of the API's version prefixes)."""
    methods: tuple[Literal["GET", "POST", "PUT", "PATCH", "DELETE"], ...] = Field(min_length=1)
    """HTTP methods it opens on them."""


class ApiCatalog(_Frozen):
    upstream_namespace: str
    """Namespace of the upstream services in every regional cluster."""
    apis: dict[str, Api] = Field(min_length=1)
    """APIs by name."""
    global_plugins: GlobalPlugins
    """Plugins applied to every request."""
    scopes: dict[Annotated[str, StringConstraints(pattern=r"^[a-z]+:[a-z]+$")], Scope] = Field(default_factory=dict)
    """Scopes marketplace integrations may ask for."""

    @model_validator(mode="after")
    def _scopes_name_routes(self) -> ApiCatalog:
        for name, scope in self.scopes.items():
            api = self.apis.get(scope.api)
            if api is None:
                raise ValueError(f"scopes.{name}.api: unknown API {scope.api!r}")
            prefixes = [route_prefix(scope.api, version) for version in api.versions]
            for path in scope.paths:
                if not any(path == p or path.startswith(f"{p}/") for p in prefixes):
                    raise ValueError(f"scopes.{name}.paths: {path!r} is under no route of {scope.api} ({prefixes})")
        return self

    @model_validator(mode="after")
    def _upstream_paths_do_not_double(self) -> ApiCatalog:
        # Routes keep their path (strip_path false) and Kong prefixes the service path: a service path that the
        # route's prefix already carries reaches the upstream twice (/graphql/v2/graphql).
        for name, api in self.apis.items():
            base = api.upstream.path.rstrip("/")
            for version in api.versions:
                if base and base in route_prefix(name, version):
                    raise ValueError(
                        f"apis.{name}.upstream.path {api.upstream.path!r} repeats in the route path "
                        f"{route_prefix(name, version)!r}: the upstream would get it twice"
                    )
        return self


def api_catalog_file(root: Path) -> Path:
    """The API catalog of the repository at `root`."""
    return root / "gateway" / APIS_FILE.name


def load_api_catalog(path: Path = APIS_FILE) -> ApiCatalog:
    return _load_cached(path.resolve())


@cache
def _load_cached(path: Path) -> ApiCatalog:
    try:
        return ApiCatalog.model_validate(load_yaml_file(path))
    except ValidationError as exc:
        raise InputError(validation_problems(str(path), exc)) from None
