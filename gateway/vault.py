"""Kong env-vault references: secrets each regional data plane resolves from its own environment, so the value is in
no Kong entity, no control-plane config, no global stack and no plan.

Kong 3.9.1 (the data planes' `KONG_IMAGE_TAG`), github.com/Kong/kong at tag 3.9.1 (commit b724fc71, 2025-06-04):
- kong/pdk/vault.lua `is_reference`: a reference is a whole field value, `{vault://...}`; text around it is not
  resolved, so a header that needs `Bearer <token>` references a variable holding all of it;
- kong/vaults/env/init.lua `get`: `{vault://env/<name>}` reads the variable `<name>` upper-cased with `-` as `_`;
- a plugin field is resolved only when its schema marks it `referenceable` (e.g. http-log `config.headers` values,
  rate-limiting `config.redis.password`).
The Kong chart upper-cases `customEnv` keys and renders a map value (`valueFrom: secretKeyRef`) as it is
(charts/kong/templates/_helpers.tpl, `kong.env` and `kong.renderEnv`).
"""

from __future__ import annotations

METER_AUTHORIZATION = "meter-kong-authorization"
"""Env-vault name of the whole `Authorization` header value (`Bearer <token>`) http-log sends to the meter."""


def env_reference(name: str) -> str:
    """`{vault://env/<name>}`: the value of the data plane's `env_variable(name)`."""
    return f"{{vault://env/{name}}}"


def env_variable(name: str) -> str:
    """The environment variable Kong's env vault reads for `name`."""
    return name.upper().replace("-", "_")
