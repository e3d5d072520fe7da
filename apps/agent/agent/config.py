"""Settings from environment variables: the contract the Pulumi program fills in.

Everything is read and validated here, once, at startup; every problem is reported at once so a
misconfigured container fails with one clear message instead of a stack trace on first request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from opentelemetry import propagate

from agent.pricing import CHEAP_MODELS, DEFAULT_MODELS
from agent.roles import ALL_ROLES, CODE_CRITIC, LEARNING_CYCLE, PROMPT_REVIEWER
from agent.semconv import RETRIEVAL_MODE_HYBRID, RETRIEVAL_MODES

PROVIDERS = ("simulated", "anthropic", "openai")
API_KEY_VARIABLES = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
DEFAULT_BASE_URLS = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}
BASE_URL_VARIABLES = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}
# The agents' own key (not the provider's): set where they are reachable from a network, not just loopback.
ACCESS_KEY_VARIABLE = "AGENT_API_KEY"
# Where the workflow finds the reviewers it calls.
REVIEWER_URL_VARIABLES = {PROMPT_REVIEWER: "PROMPT_REVIEWER_URL", CODE_CRITIC: "CODE_CRITIC_URL"}
MIN_ACCESS_KEY_CHARS = 16

T = TypeVar("T", int, float)


class ConfigError(ValueError):
    """One or more settings are missing or invalid; the message lists all of them."""


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks; `reveal()` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def agent_request_headers(access_key: Secret | None) -> dict[str, str]:
    """Headers of a call to an agent: its key as the bearer token it checks, and the current trace context."""
    headers = {"authorization": f"Bearer {access_key.reveal()}"} if access_key else {}
    propagate.inject(headers)
    return headers


SWITCH_VALUES = {
    "on": True,
    "true": True,
    "1": True,
    "yes": True,
    "off": False,
    "false": False,
    "0": False,
    "no": False,
}


@dataclass(frozen=True)
class Settings:
    role: str
    provider: str = "simulated"
    model: str = DEFAULT_MODELS["simulated"]
    """The strong model: every review when routing is off, the hard ones when it is on."""
    cheap_model: str = CHEAP_MODELS["simulated"]
    """The cheap model the router sends easy reviews to."""
    routing: bool = True
    routing_max_cheap_tokens: int = 150
    local_base_url: str | None = None
    """An OpenAI-compatible endpoint (Ollama, vLLM) that serves the cheap route instead, if set."""
    local_model: str | None = None
    local_api_key: Secret | None = None
    semantic_cache: bool = True
    """Answer from earlier reviews that mean the same (needs QDRANT_URL)."""
    cache_collection: str = "review-cache"
    cache_threshold: float = 0.8
    cache_ttl_s: float = 86_400.0
    cache_max_entries: int = 10_000
    port: int = 8080
    access_key: Secret | None = None
    """Callers of /review must send it as `Authorization: Bearer <key>`; None admits anyone who can connect."""
    api_key: Secret | None = None
    base_url: str | None = None
    qdrant_url: str | None = None
    qdrant_collection: str = "review-guidelines"
    qdrant_timeout_s: float = 2.0
    retrieval_top_k: int = 3
    retrieval_mode: str = RETRIEVAL_MODE_HYBRID
    """hybrid (dense and sparse vectors, fused by Qdrant), dense or sparse."""
    retrieval_rerank: bool = True
    """Reorder the candidates by the embedding model's similarity, where the model is installed."""
    llm_timeout_s: float = 30.0
    """The whole LLM call, retries and the waits between them included."""
    llm_attempt_timeout_s: float = 20.0
    llm_max_retries: int = 2
    max_output_tokens: int = 1024
    max_text_chars: int = 8000
    simulated_latency_s: float = 0.15
    simulated_error_rate: float = 0.05
    log_level: str = "INFO"
    reviewer_urls: Mapping[str, str] = field(default_factory=dict)
    """learning-cycle only: each reviewer's base URL, by role."""
    reviewer_timeout_s: float = 45.0
    """learning-cycle only: one call to a reviewer, whose own LLM call may take LLM_TIMEOUT_SECONDS."""

    @property
    def max_body_bytes(self) -> int:
        """Upper bound for a request body: worst-case JSON escaping of max_text_chars, plus slack."""
        return self.max_text_chars * 6 + 1024

    @staticmethod
    def _local_model_problems(base_url: str | None, model: str | None) -> list[str]:
        if base_url is None:
            return []
        problems = []
        if not base_url.startswith(("http://", "https://")):
            problems.append(f"LLM_LOCAL_BASE_URL must start with http:// or https://, got {base_url!r}")
        if model is None:
            problems.append("LLM_LOCAL_MODEL is required when LLM_LOCAL_BASE_URL is set")
        return problems

    @staticmethod
    def _provider_endpoint(
        provider: str, text: Callable[..., str | None], problems: list[str]
    ) -> tuple[Secret | None, str | None]:
        """A paid provider's key (required) and base URL; the simulated one has neither."""
        if provider not in API_KEY_VARIABLES:
            return None, None
        key_name = API_KEY_VARIABLES[provider]
        key = text(key_name)
        if key is None:
            problems.append(f"{key_name} is required when LLM_PROVIDER={provider}")
        return Secret(key) if key else None, text(BASE_URL_VARIABLES[provider], DEFAULT_BASE_URLS[provider])

    @staticmethod
    def _reviewer_urls(text: Callable[..., str | None], problems: list[str]) -> dict[str, str]:
        """The reviewers the workflow calls, by role; each one required."""
        urls = {}
        for reviewer, name in REVIEWER_URL_VARIABLES.items():
            url = text(name)
            if url is None or not url.startswith(("http://", "https://")):
                problems.append(f"{name} is required for AGENT_ROLE={LEARNING_CYCLE}: http(s)://host:port")
            else:
                urls[reviewer] = url.rstrip("/")
        return urls

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read the environment; raise ConfigError listing every problem found."""
        problems: list[str] = []

        def text(name: str, default: str | None = None) -> str | None:
            value = environ.get(name, "").strip()
            return value or default

        def switch(name: str, default: bool) -> bool:
            raw = text(name)
            if raw is None:
                return default
            if raw.lower() not in SWITCH_VALUES:
                problems.append(f"{name} must be on or off, got {raw!r}")
                return default
            return SWITCH_VALUES[raw.lower()]

        def number(name: str, default: T, convert: Callable[[str], T], low: T, high: T) -> T:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = convert(raw)
            except ValueError:
                problems.append(f"{name} must be a number, got {raw!r}")
                return default
            if not low <= value <= high:  # also false for NaN
                problems.append(f"{name} must be between {low} and {high}, got {raw!r}")
                return default
            return value

        role = text("AGENT_ROLE")
        if role is None:
            problems.append(f"AGENT_ROLE is required: one of {', '.join(ALL_ROLES)}")
        elif role not in ALL_ROLES:
            problems.append(f"AGENT_ROLE must be one of {', '.join(ALL_ROLES)}, got {role!r}")

        provider = text("LLM_PROVIDER", "simulated") or "simulated"
        if provider not in PROVIDERS:
            problems.append(f"LLM_PROVIDER must be one of {', '.join(PROVIDERS)}, got {provider!r}")
            provider = "simulated"

        api_key, base_url = cls._provider_endpoint(provider, text, problems)

        qdrant_url = text("QDRANT_URL")
        if qdrant_url is not None and not qdrant_url.startswith(("http://", "https://")):
            problems.append(f"QDRANT_URL must start with http:// or https://, got {qdrant_url!r}")

        local_base_url, local_model = text("LLM_LOCAL_BASE_URL"), text("LLM_LOCAL_MODEL")
        problems += cls._local_model_problems(local_base_url, local_model)
        local_key = text("LLM_LOCAL_API_KEY")
        access_key = text(ACCESS_KEY_VARIABLE)
        if access_key is not None and len(access_key) < MIN_ACCESS_KEY_CHARS:
            problems.append(f"{ACCESS_KEY_VARIABLE} must have at least {MIN_ACCESS_KEY_CHARS} characters")

        reviewer_urls = cls._reviewer_urls(text, problems) if role == LEARNING_CYCLE else {}
        retrieval_mode = (text("RETRIEVAL_MODE", RETRIEVAL_MODE_HYBRID) or RETRIEVAL_MODE_HYBRID).lower()
        if retrieval_mode not in RETRIEVAL_MODES:
            problems.append(f"RETRIEVAL_MODE must be one of {', '.join(RETRIEVAL_MODES)}, got {retrieval_mode!r}")
            retrieval_mode = RETRIEVAL_MODE_HYBRID

        log_level = (text("LOG_LEVEL", "INFO") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
            log_level = "INFO"

        settings = cls(
            role=role or "",
            provider=provider,
            model=text("LLM_MODEL", DEFAULT_MODELS[provider]) or DEFAULT_MODELS[provider],
            cheap_model=text("LLM_CHEAP_MODEL", CHEAP_MODELS[provider]) or CHEAP_MODELS[provider],
            routing=switch("ROUTING", True),
            routing_max_cheap_tokens=number("ROUTING_MAX_CHEAP_TOKENS", 150, int, 1, 1_000_000),
            local_base_url=local_base_url,
            local_model=local_model,
            local_api_key=Secret(local_key) if local_key else None,
            semantic_cache=switch("SEMANTIC_CACHE", True),
            cache_collection=text("QDRANT_CACHE_COLLECTION", "review-cache") or "review-cache",
            cache_threshold=number("CACHE_SIMILARITY_THRESHOLD", 0.8, float, 0.5, 1.0),
            cache_ttl_s=number("CACHE_TTL_SECONDS", 86_400.0, float, 1.0, 30 * 86_400.0),
            cache_max_entries=number("CACHE_MAX_ENTRIES", 10_000, int, 10, 10_000_000),
            port=number("PORT", 8080, int, 1, 65535),
            access_key=Secret(access_key) if access_key else None,
            api_key=api_key,
            base_url=base_url,
            qdrant_url=qdrant_url,
            qdrant_collection=text("QDRANT_COLLECTION", "review-guidelines") or "review-guidelines",
            qdrant_timeout_s=number("QDRANT_TIMEOUT_SECONDS", 2.0, float, 0.1, 60.0),
            retrieval_top_k=number("RETRIEVAL_TOP_K", 3, int, 1, 20),
            retrieval_mode=retrieval_mode,
            retrieval_rerank=switch("RETRIEVAL_RERANK", True),
            llm_timeout_s=number("LLM_TIMEOUT_SECONDS", 30.0, float, 1.0, 600.0),
            llm_attempt_timeout_s=number("LLM_ATTEMPT_TIMEOUT_SECONDS", 20.0, float, 1.0, 600.0),
            llm_max_retries=number("LLM_MAX_RETRIES", 2, int, 0, 10),
            max_output_tokens=number("LLM_MAX_TOKENS", 1024, int, 16, 65536),
            max_text_chars=number("MAX_TEXT_CHARS", 8000, int, 100, 200_000),
            simulated_latency_s=number("SIMULATED_LATENCY_MS", 150, int, 0, 60_000) / 1000,
            simulated_error_rate=number("SIMULATED_ERROR_RATE", 0.05, float, 0.0, 1.0),
            log_level=log_level,
            reviewer_urls=reviewer_urls,
            reviewer_timeout_s=number("REVIEWER_TIMEOUT_SECONDS", 45.0, float, 1.0, 600.0),
        )
        if problems:
            raise ConfigError("invalid agent configuration:\n  - " + "\n  - ".join(problems))
        return settings
