"""User configuration (TOML).

```toml
[dimensions]
feature = ["app.feature", "metadata.feature", "request.feature"]
customer_id = ["app.customer_id", "metadata.customer_id", "request.customer_id"]
```

Each dimension is a list of lookups tried in order: your keys first, then the defaults below. A
lookup is an attribute key (`app.feature`) or a JSON path into an attribute whose value is a JSON
object (`metadata.feature` reads key `feature` of the OpenInference `metadata` attribute;
`request.metadata.feature` reads the agent_runs `request` column). Runs look on the root span first,
then on their other spans.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dimensions import LOOKUP_DIMENSIONS

# The attribute lookups of each LOOKUP_DIMENSIONS dimension, tried in order after the config's own.
DEFAULT_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "user_id": (
        "user.id", "enduser.id", "gen_ai.user.id", "langfuse.user.id",
        "traceloop.association.properties.user_id", "metadata.user_id",
        "request.user_id", "request.metadata.user_id", "request.user",
    ),
    "session_id": (
        "session.id", "gen_ai.conversation.id", "langfuse.session.id",
        "traceloop.association.properties.session_id", "metadata.session_id",
        "metadata.thread_id", "metadata.conversation_id",
        "request.session_id", "request.metadata.session_id", "request.conversation_id",
    ),
    "customer_id": (
        "customer.id", "customer_id", "tenant.id", "tenant_id", "app.customer_id",
        "traceloop.association.properties.customer_id", "traceloop.association.properties.tenant_id",
        "metadata.customer_id", "metadata.tenant_id",
        "request.customer_id", "request.metadata.customer_id", "request.tenant_id",
        "request.metadata.tenant_id",
    ),
    "feature": (
        "feature", "app.feature", "traceloop.association.properties.feature", "metadata.feature",
        "request.feature", "request.metadata.feature",
    ),
    "environment": (
        "deployment.environment.name", "deployment.environment", "langfuse.environment",
        "metadata.environment", "request.environment", "request.metadata.environment",
    ),
}


class ConfigError(ValueError):
    """The config file is unreadable or has a wrong shape (the message names the file and key)."""


@dataclass(frozen=True)
class Config:
    dimensions: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_DIMENSIONS)
    )
    path: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None) -> Config:
        if path is None:
            return cls()
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: not valid TOML: {e}") from None
        return cls.from_dict(data, str(p))

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | None = None) -> Config:
        where = path or "config"
        dims = dict(DEFAULT_DIMENSIONS)
        section = data.get("dimensions", {})
        if not isinstance(section, dict):
            raise ConfigError(f"{where}: [dimensions] must be a table")
        for name, keys in section.items():
            if name not in LOOKUP_DIMENSIONS:
                raise ConfigError(
                    f"{where}: [dimensions].{name} is not a dimension; use one of {', '.join(LOOKUP_DIMENSIONS)}"
                )
            if isinstance(keys, str):
                keys = [keys]
            if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
                raise ConfigError(f"{where}: [dimensions].{name} must be a list of attribute keys or paths")
            merged = list(keys) + [k for k in DEFAULT_DIMENSIONS[name] if k not in keys]
            dims[name] = tuple(merged)
        return cls(dimensions=dims, path=path, raw=data)
