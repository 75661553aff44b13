"""What agentlens knows about a model: its context window (for saturation and context-overflow
checks), from the genai-prices data set, overridable in the config:

```toml
[models."acme-finetune-v1"]
context_window = 16384
```

Matching follows genai-prices (provider hint first, then the model name's pattern), so dated names
such as `gpt-4o-mini-2024-07-18` resolve to `gpt-4o-mini`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from ..core.config import Config, Section, integer

if TYPE_CHECKING:  # imported where a model is looked up (~0.1 s: a command that shows runs never pays it)
    from genai_prices import types as gp

# our provider names (lowercased `gen_ai.provider.name` / `gen_ai.system` values) -> genai-prices ids
PROVIDER_IDS = {
    "openai": "openai", "azure.ai.openai": "azure", "az.ai.openai": "azure", "azure": "azure",
    "anthropic": "anthropic", "aws.bedrock": "aws", "bedrock": "aws", "gcp.gemini": "google",
    "gcp.vertex_ai": "google", "gcp.gen_ai": "google", "vertex_ai": "google", "gemini": "google",
    "google": "google", "vertexai": "google", "mistral_ai": "mistral", "mistralai": "mistral",
    "cohere": "cohere", "deepseek": "deepseek", "groq": "groq", "x_ai": "x-ai", "xai": "x-ai",
    "perplexity": "perplexity", "together_ai": "together", "together": "together",
    "fireworks": "fireworks", "cerebras": "cerebras",
}


@dataclass(frozen=True)
class ModelInfo:
    model: str
    provider: str | None
    context_window: int | None
    source: str | None  # "config", "genai-prices" or None when unknown
    matched: str | None = None  # the genai-prices model id it resolved to


MODEL_KEYS = ("context_window",)


def _overrides(config: Config) -> dict[str, dict[str, Any]]:
    """`[models."name"]` of the config, validated (errors name the file and the key)."""
    section = Section.of(config, "models")
    out = {}
    for name in section:
        model = section.table(name, quoted=True).only(MODEL_KEYS, "a model setting")
        out[name] = {"context_window": model.value("context_window", integer(1), None)}
    return out


@functools.lru_cache(maxsize=4096)
def genai_model(model: str, provider: str | None) -> tuple[gp.Provider, gp.ModelInfo] | None:
    """The genai-prices provider and model a recorded (model, provider) pair resolves to (also used
    by agentlens.pricing), or None when genai-prices does not know the model."""
    from genai_prices import data_snapshot

    snap = data_snapshot.get_snapshot()
    pid = PROVIDER_IDS.get(provider or "") or provider  # else the name itself (genai-prices ids: openrouter, ...)
    for hint in ([pid, None] if pid else [None]):
        try:
            return snap.find_provider_model(model, None, hint, None)
        except LookupError:
            continue
    if "/models/" in model:  # a Vertex AI resource name: projects/.../publishers/google/models/gemini-2.5-flash
        return genai_model(model.rsplit("/models/", 1)[1], provider)
    return None


def _genai_prices(model: str, provider: str | None) -> tuple[str, int | None] | None:
    found = genai_model(model, provider)
    return (found[1].id, found[1].context_window) if found else None


def model_info(model: str, provider: str | None = None, config: Config | None = None) -> ModelInfo:
    override = _overrides(config or Config()).get(model)
    if override and override.get("context_window") is not None:
        return ModelInfo(model, provider, int(override["context_window"]), "config")
    found = _genai_prices(model, provider)
    if found is None:
        return ModelInfo(model, provider, None, None)
    return ModelInfo(model, provider, found[1], "genai-prices" if found[1] else None, found[0])


def model_table(pairs: Iterable[tuple[str, str | None]], config: Config | None = None) -> pl.DataFrame:
    """One row per (model, provider) pair with its context window: register it in DuckDB to join."""
    rows = [model_info(m, p, config) for m, p in dict.fromkeys(pairs) if m]
    return pl.DataFrame(
        {
            "model": [r.model for r in rows],
            "provider": [r.provider for r in rows],
            "context_window": [r.context_window for r in rows],
            "context_window_source": [r.source for r in rows],
            "matched_model": [r.matched for r in rows],
        },
        schema={"model": pl.String, "provider": pl.String, "context_window": pl.Int64,
                "context_window_source": pl.String, "matched_model": pl.String},
    )
