"""LLM providers behind one interface: a free offline simulator, Anthropic and OpenAI over HTTP.

The real providers speak plain HTTP through httpx (no SDKs): one request shape, usage read back
from the response, failures turned into ProviderError with a low-cardinality `error_type` for the
`error.type` attribute. Tests inject an httpx transport, so no test touches the network.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from agent import __version__
from agent.config import Secret, Settings
from agent.roles import CODE_CRITIC

ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class ChatRequest:
    model: str
    system: str
    user: str
    max_tokens: int


@dataclass(frozen=True)
class ChatResult:
    text: str
    model: str
    """The model that answered (`gen_ai.response.model`), e.g. a dated snapshot of the requested one."""
    input_tokens: int
    output_tokens: int
    response_id: str | None = None
    finish_reason: str | None = None


class ProviderError(Exception):
    """An LLM call failed; `error_type` is what dashboards group errors by."""

    def __init__(self, message: str, *, error_type: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.status_code = status_code


class LLMProvider(Protocol):
    system: str
    """The `gen_ai.system` / `gen_ai.provider.name` value."""
    server_address: str | None
    server_port: int | None

    async def chat(self, request: ChatRequest) -> ChatResult: ...

    async def aclose(self) -> None: ...


def estimate_tokens(text: str) -> int:
    """About four characters per token, the usual rule of thumb for English text and code."""
    return max(1, math.ceil(len(text) / 4))


class SimulatedProvider:
    """Deterministic answers, token counts, latency and failures from a hash of the request.

    Free and offline, so the lab shows traffic, tokens, cost and errors without an API key. The
    same model and text always give the same outcome, which makes it testable; about
    `error_rate` of distinct texts fail, which gives error-rate panels something to show.
    """

    system = "simulated"
    server_address: str | None = None
    server_port: int | None = None

    def __init__(
        self,
        role: str,
        *,
        latency_s: float = 0.15,
        error_rate: float = 0.05,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.role = role
        self.latency_s = latency_s
        self.error_rate = error_rate
        self._sleep = sleep

    def fails(self, model: str, user: str) -> bool:
        """Whether this request is one of the deterministic failures."""
        return (self._digest(model, user) >> 8) % 10_000 < self.error_rate * 10_000

    async def chat(self, request: ChatRequest) -> ChatResult:
        digest = self._digest(request.model, request.user)
        # Latency between 1x and 2x the base, fixed per request.
        await self._sleep(self.latency_s * (1 + (digest % 1000) / 1000))
        if self.fails(request.model, request.user):
            raise ProviderError("simulated provider overloaded", error_type="overloaded_error", status_code=529)
        text = self._review(request)
        return ChatResult(
            text=text,
            model=request.model,
            input_tokens=estimate_tokens(request.system) + estimate_tokens(request.user),
            output_tokens=min(estimate_tokens(text), request.max_tokens),
            response_id=f"sim-{digest:016x}",
            finish_reason="stop",
        )

    async def aclose(self) -> None:
        return None

    @staticmethod
    def _digest(model: str, user: str) -> int:
        return int.from_bytes(hashlib.sha256(f"{model}\n{user}".encode()).digest()[:8], "big")

    def _review(self, request: ChatRequest) -> str:
        findings = _code_findings(request.user) if self.role == CODE_CRITIC else _prompt_findings(request.user)
        cited = re.findall(r"\[([a-z]{2}-\d{3})\]", request.system)
        count = len(findings)
        verdict = "looks good" if not count else f"needs work ({count} finding{'' if count == 1 else 's'})"
        lines = [f"Verdict: {verdict}."]
        lines += [f"{n}. {finding}" for n, finding in enumerate(findings[:5], start=1)]
        if cited:
            lines.append(f"Guidelines considered: {', '.join(cited)}.")
        lines.append(f"(simulated review by {self.role}, model {request.model})")
        return "\n".join(lines)


_PROMPT_CHECKS: tuple[tuple[str, str, bool], ...] = (
    # (pattern, finding when the check fails, whether the pattern must be present)
    (r"\byou are\b|\bact as\b|\brole\b", "No role or audience: say who the model is and who reads the answer.", True),
    (r"\bjson\b|\bformat\b|\bbullet|\btable\b|\blist\b", "No output format: ask for JSON, a list or a table.", True),
    (r"\bexample|\be\.g\.|for instance", "No examples: add one or two input/output examples.", True),
    (r"\bmust\b|\bshould\b|\bdo not\b|\bdon't\b|\bat most\b|\bnever\b", "No constraints: state the limits.", True),
    (r"\b(good|nice|something|stuff|etc)\b", "Vague words (good, nice, stuff): use measurable criteria.", False),
    (r"\bignore (all|previous|the above)\b", "Contains an instruction override; fence user data in tags.", False),
)


def _prompt_findings(text: str) -> list[str]:
    lowered = text.lower()
    findings = [
        finding for pattern, finding, required in _PROMPT_CHECKS if (re.search(pattern, lowered) is None) == required
    ]
    if len(lowered.split()) < 8:
        findings.append("Very short prompt: give the context the model cannot guess.")
    return findings


_CODE_CHECKS: tuple[tuple[str, str], ...] = (
    (r"\b(eval|exec)\s*\(", "eval/exec on data allows code execution: parse with json or ast.literal_eval."),
    (r"except\s*:|except Exception:\s*\n\s*pass", "Bare or swallowed exception: catch the specific error and log it."),
    (
        r"(password|secret|api_key|token)\s*=\s*['\"][^'\"]+['\"]",
        "Hard-coded secret: read it from the environment.",
    ),
    (r"def \w+\([^)]*=\s*(\[\]|\{\})", "Mutable default argument: default to None and create it inside."),
    (r"\bprint\s*\(", "print() in code: use the logging module."),
    (r"\b(TODO|FIXME)\b", "Unresolved TODO/FIXME: turn it into an issue or fix it."),
    (r"import \*", "Wildcard import hides where names come from: import them explicitly."),
)


def _code_findings(text: str) -> list[str]:
    findings = [finding for pattern, finding in _CODE_CHECKS if re.search(pattern, text)]
    if any(len(line) > 100 for line in text.splitlines()):
        findings.append("Lines longer than 100 characters: wrap them for readability.")
    return findings


def _redact(text: str, secret: Secret) -> str:
    """Remove the key, and anything shaped like a provider key, from text bound for logs."""
    if secret.reveal():
        text = text.replace(secret.reveal(), "[redacted]")
    return re.sub(r"\bsk-[A-Za-z0-9_\-*.]{6,}", "[redacted]", text)


class _HttpProvider:
    """Shared HTTP plumbing: client, server address for telemetry, error mapping, redaction."""

    system: str

    def __init__(
        self,
        api_key: Secret,
        *,
        base_url: str,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            transport=transport,
            headers={"user-agent": f"llm-infra-lab-agent/{__version__}"},
        )
        url = httpx.URL(base_url)
        self.server_address: str | None = url.host
        self.server_port: int | None = url.port or (443 if url.scheme == "https" else 80)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._client.base_url)!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._client.post(path, json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise ProviderError(f"{self.system} request timed out", error_type="timeout") from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"{self.system} request failed: {type(exc).__name__}", error_type=type(exc).__name__
            ) from exc
        if response.status_code >= 400:
            raise self._error(response)
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderError(f"{self.system} returned invalid JSON", error_type="invalid_response") from exc
        if not isinstance(data, dict):
            raise ProviderError(f"{self.system} returned unexpected JSON", error_type="invalid_response")
        return data

    def _error(self, response: httpx.Response) -> ProviderError:
        """Both APIs answer errors as {"error": {"type": ..., "message": ...}}; OpenAI may add "code"."""
        error_type, message = str(response.status_code), ""
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict):
            error_type = str(error.get("type") or error.get("code") or error_type)
            message = str(error.get("message") or "")
        message = _redact(message, self._api_key)[:300]
        return ProviderError(
            f"{self.system} returned HTTP {response.status_code}: {message}".rstrip(": "),
            error_type=error_type,
            status_code=response.status_code,
        )


def _usage(data: dict[str, Any], *keys: str) -> int:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        raise ProviderError("response has no usage", error_type="invalid_response")
    return sum(int(usage.get(key) or 0) for key in keys)


class AnthropicProvider(_HttpProvider):
    """Anthropic Messages API: POST {base}/v1/messages with x-api-key and anthropic-version."""

    system = "anthropic"

    async def chat(self, request: ChatRequest) -> ChatResult:
        data = await self._post(
            "/v1/messages",
            {
                "model": request.model,
                "max_tokens": request.max_tokens,
                "system": request.system,
                "messages": [{"role": "user", "content": request.user}],
            },
            {"x-api-key": self._api_key.reveal(), "anthropic-version": ANTHROPIC_VERSION},
        )
        content = data.get("content")
        if not isinstance(content, list):
            raise ProviderError("anthropic response has no content", error_type="invalid_response")
        return ChatResult(
            text="".join(
                str(block.get("text", ""))
                for block in content
                if isinstance(block, dict) and block.get("type") == "text"
            ),
            model=str(data.get("model") or request.model),
            # input_tokens excludes prompt-cache reads and writes; the conventions count all input.
            input_tokens=_usage(data, "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"),
            output_tokens=_usage(data, "output_tokens"),
            response_id=data.get("id"),
            finish_reason=data.get("stop_reason"),
        )


class OpenAIProvider(_HttpProvider):
    """OpenAI Chat Completions API: POST {base}/chat/completions with a bearer token."""

    system = "openai"

    async def chat(self, request: ChatRequest) -> ChatResult:
        data = await self._post(
            "/chat/completions",
            {
                "model": request.model,
                "messages": [
                    {"role": "system", "content": request.system},
                    {"role": "user", "content": request.user},
                ],
                # Reasoning models reject max_tokens; max_completion_tokens also bounds reasoning tokens.
                "max_completion_tokens": request.max_tokens,
            },
            {"authorization": f"Bearer {self._api_key.reveal()}"},
        )
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ProviderError("openai response has no choices", error_type="invalid_response")
        choice = choices[0]
        return ChatResult(
            text=str((choice.get("message") or {}).get("content") or ""),
            model=str(data.get("model") or request.model),
            input_tokens=_usage(data, "prompt_tokens"),
            output_tokens=_usage(data, "completion_tokens"),
            response_id=data.get("id"),
            finish_reason=choice.get("finish_reason"),
        )


def make_provider(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> LLMProvider:
    """The provider the settings name; `transport` lets tests answer HTTP calls in-process."""
    if settings.provider == "simulated":
        return SimulatedProvider(
            settings.role, latency_s=settings.simulated_latency_s, error_rate=settings.simulated_error_rate
        )
    if settings.api_key is None or settings.base_url is None:
        raise ValueError(f"provider {settings.provider} needs an API key and a base URL")
    cls = AnthropicProvider if settings.provider == "anthropic" else OpenAIProvider
    return cls(settings.api_key, base_url=settings.base_url, timeout_s=settings.llm_timeout_s, transport=transport)
