"""LLM providers behind one interface: a free offline simulator, Anthropic and OpenAI over HTTP.

The real providers speak plain HTTP through httpx (no SDKs): one request shape, usage read back
from the response, failures turned into ProviderError with a low-cardinality `error_type` for the
`error.type` attribute. Tests inject an httpx transport, so no test touches the network.

Transient failures are retried (RetryPolicy): 408, 409, 429, 5xx (529 included), timeouts and
connection errors, with exponential backoff and jitter or the server's `retry-after`, all within
one deadline for the whole call (LLM_TIMEOUT_SECONDS), so a retry never makes a call slower than
a caller was promised.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import math
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from opentelemetry import trace

from agent import __version__
from agent import semconv as sc
from agent.config import Secret, Settings
from agent.guardrails import redact
from agent.pricing import Usage
from agent.roles import CODE_CRITIC, LEARNING_CYCLE, guidelines_for

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
    retries: tuple[str, ...] = ()
    """The error type of each failed attempt that was retried before this answer."""
    cache_read_tokens: int = 0
    """Of input_tokens, those read from the provider's prompt cache."""
    cache_write_tokens: int = 0
    """Of input_tokens, those written to the prompt cache (5-minute lifetime)."""
    cache_write_1h_tokens: int = 0
    """Of input_tokens, those written to the prompt cache with a 1-hour lifetime (Anthropic)."""

    @property
    def usage(self) -> Usage:
        return Usage(
            self.input_tokens,
            self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens,
        )


class ProviderError(Exception):
    """An LLM call failed; `error_type` is what dashboards group errors by."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str,
        status_code: int | None = None,
        retryable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.retries: tuple[str, ...] = ()
        """The error types of the earlier attempts, retried before this last failure."""
        self.system: str | None = None
        """The gen_ai.system of the provider that failed, once known."""


# What the providers' own SDKs retry: request timeout, conflict (lock), rate limit and server errors
# (529 is Anthropic's "overloaded").
RETRYABLE_STATUS = frozenset({408, 409, 429})
# A retry-after longer than this is not a transient blip: fail now rather than hold the request.
MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `max_retries` more attempts; each waits the server's retry-after or a backoff.

    The backoff doubles from `base_delay_s` up to `max_delay_s` and takes up to a quarter off at
    random (jitter), so callers that failed together do not retry together. Each attempt gets at
    most `attempt_timeout_s`, and never more than what is left of the call's deadline.
    """

    max_retries: int = 2
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    attempt_timeout_s: float = 20.0

    def backoff(self, retry: int, rand: float) -> float:
        """The wait before retry number `retry` (0 for the first), for `rand` in [0, 1)."""
        return min(self.max_delay_s, self.base_delay_s * 2**retry) * (1 - 0.25 * rand)


def retry_after_seconds(headers: httpx.Headers, now: float | None = None) -> float | None:
    """`retry-after-ms` (OpenAI), else `retry-after` in seconds or as an HTTP date; None if absent."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000
            return value if math.isfinite(value) and value >= 0 else None
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def server_port(url: httpx.URL) -> int:
    """The port a URL reaches, its scheme's default when it names none (`server.port`)."""
    return url.port or (443 if url.scheme == "https" else 80)


class LLMProvider(Protocol):
    system: str
    """The `gen_ai.system` / `gen_ai.provider.name` value."""
    server_address: str | None
    server_port: int | None
    # A provider may also set `free = True` (a local model): its calls cost nothing per token.

    async def chat(self, request: ChatRequest) -> ChatResult: ...

    async def aclose(self) -> None: ...


def estimate_tokens(text: str) -> int:
    """About four characters per token, the usual rule of thumb for English text and code."""
    return max(1, math.ceil(len(text) / 4))


class SimulatedProvider:
    """Deterministic answers, token counts, latency and failures from a hash of the request.

    Free and offline, so the lab shows traffic, tokens, cost and errors without an API key. The
    same model and text always give the same answer and latency, which makes it testable. About
    `error_rate` of calls fail, which gives error-rate panels something to show: whether a text's
    first call fails is fixed by its hash, and each repeat of it draws again (by the hash of the
    text and the repeat's number), so popular texts that the traffic sends over and over fail at
    the same rate as the rest instead of always or never.
    """

    system = "simulated"
    server_address: str | None = None
    server_port: int | None = None

    # Two models, so routing shows offline: the large one is slower and (pricing.py) dearer, and
    # its reviews list every finding where the small one's stop at three.
    LATENCY_FACTOR = {"simulated-large": 3.0}
    FINDINGS = {"simulated-large": 5}

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
        self._calls: dict[int, int] = {}
        """Calls so far, by the request's digest (not its text: this must stay small)."""

    # Repeats are counted for this many distinct texts at most (about 1 MB); then the count starts over.
    MAX_COUNTED = 10_000

    def fails(self, model: str, user: str, repeat: int = 0) -> bool:
        """Whether the `repeat`-th repeat (0: the first call) of this request is a failure."""
        return (self._digest(model, user, repeat) >> 8) % 10_000 < self.error_rate * 10_000

    def latency(self, model: str, user: str) -> float:
        """Between 1x and 2x the base (3x that for simulated-large), fixed per request."""
        factor = self.LATENCY_FACTOR.get(model, 1.0)
        return self.latency_s * factor * (1 + (self._digest(model, user) % 1000) / 1000)

    async def chat(self, request: ChatRequest) -> ChatResult:
        digest = self._digest(request.model, request.user)
        if len(self._calls) >= self.MAX_COUNTED and digest not in self._calls:
            self._calls.clear()
        repeat = self._calls.get(digest, 0)
        self._calls[digest] = repeat + 1
        await self._sleep(self.latency(request.model, request.user))
        if self.fails(request.model, request.user, repeat):
            raise ProviderError("simulated provider overloaded", error_type="overloaded_error", status_code=529)
        text = self._answer(request, digest)
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
    def _digest(model: str, user: str, repeat: int = 0) -> int:
        salt = f"\n{repeat}" if repeat else ""
        return int.from_bytes(hashlib.sha256(f"{model}\n{user}{salt}".encode()).digest()[:8], "big")

    # Per mille of answers that are ungrounded on purpose, by how: so the grounding check and its
    # Loki alert have something to show offline. Fixed by the request's hash, like everything here.
    CITES_UNRETRIEVED_PER_MILLE = 15
    DROPS_CITATIONS_PER_MILLE = 10
    MISQUOTES_PER_MILLE = 10
    MISQUOTE = "os.system(user_input)"

    def _answer(self, request: ChatRequest, digest: int) -> str:
        """`digest`, the request's hash, picks what varies: the assignment's parts, a review's slip."""
        if self.role == LEARNING_CYCLE:
            return _assignment(request.user, digest)
        return self._review(request, digest)

    def _review(self, request: ChatRequest, digest: int) -> str:
        findings = _code_findings(request.user) if self.role == CODE_CRITIC else _prompt_findings(request.user)
        retrieved = re.findall(r"^- \[([a-z]{2}-\d{3})\]", request.system, flags=re.MULTILINE)
        slip = (digest >> 32) % 1000
        count = len(findings)
        verdict = "looks good" if not count else f"needs work ({count} finding{'' if count == 1 else 's'})"
        lines = [f"Verdict: {verdict}."]
        cited = []
        for n, finding in enumerate(findings[: self.FINDINGS.get(request.model, 3)], 1):
            cites = finding.guideline_id in retrieved
            lines.append(f"{n}. {finding.text}" + (f" [{finding.guideline_id}]" if cites else ""))
            cited += [finding.guideline_id] if cites else []
            if finding.line is not None:
                lines.append(f"   > {finding.line}")
        cited = cited or retrieved
        if slip < self.CITES_UNRETRIEVED_PER_MILLE:
            cited = [*cited, next(g.id for g in guidelines_for(self.role) if g.id not in retrieved)]
        elif slip < self.CITES_UNRETRIEVED_PER_MILLE + self.DROPS_CITATIONS_PER_MILLE:
            lines, cited = [re.sub(r" \[[a-z]{2}-\d{3}\]$", "", line) for line in lines], []
        elif self.role == CODE_CRITIC and slip < self._ungrounded_per_mille:
            lines.append(f"   > {self.MISQUOTE}")
        if cited:
            lines.append(f"Guidelines applied: {', '.join(dict.fromkeys(cited))}.")
        lines.append(f"(simulated review by {self.role}, model {request.model})")
        return "\n".join(lines)

    @property
    def _ungrounded_per_mille(self) -> int:
        return self.CITES_UNRETRIEVED_PER_MILLE + self.DROPS_CITATIONS_PER_MILLE + self.MISQUOTES_PER_MILLE


@dataclass(frozen=True)
class Finding:
    text: str
    guideline_id: str
    """The guideline the finding applies; cited when retrieval returned it."""
    line: str | None = None
    """The line of code it is about, quoted under it."""


_PROMPT_CHECKS: tuple[tuple[str, str, str, bool], ...] = (
    # (pattern, finding when the check fails, its guideline, whether the pattern must be present)
    (
        r"\byou are\b|\bact as\b|\brole\b",
        "No role or audience: say who the model is and who reads the answer.",
        "pr-001",
        True,
    ),
    (
        r"\bjson\b|\bformat\b|\bbullet|\btable\b|\blist\b",
        "No output format: ask for JSON, a list or a table.",
        "pr-002",
        True,
    ),
    (r"\bexample|\be\.g\.|for instance", "No examples: add one or two input/output examples.", "pr-003", True),
    (
        r"\bmust\b|\bshould\b|\bdo not\b|\bdon't\b|\bat most\b|\bnever\b",
        "No constraints: state the limits.",
        "pr-006",
        True,
    ),
    (
        r"\b(good|nice|something|stuff|etc)\b",
        "Vague words (good, nice, stuff): use measurable criteria.",
        "pr-005",
        False,
    ),
    (
        r"\bignore (all|previous|the above)\b",
        "Contains an instruction override; fence user data in tags.",
        "pr-004",
        False,
    ),
)


def _prompt_findings(text: str) -> list[Finding]:
    lowered = text.lower()
    findings = [
        Finding(finding, guideline)
        for pattern, finding, guideline, required in _PROMPT_CHECKS
        if (re.search(pattern, lowered) is None) == required
    ]
    if len(lowered.split()) < 8:
        findings.append(Finding("Very short prompt: give the context the model cannot guess.", "pr-006"))
    return findings


_CODE_CHECKS: tuple[tuple[str, str, str], ...] = (
    (r"\b(eval|exec)\s*\(", "eval/exec on data allows code execution: parse with json or ast.literal_eval.", "cc-001"),
    (
        r"except\s*:|except Exception:\s*\n\s*pass",
        "Bare or swallowed exception: catch the specific error and log it.",
        "cc-002",
    ),
    (
        r"(password|secret|api_key|token)\s*=\s*['\"][^'\"]+['\"]",
        "Hard-coded secret: read it from the environment.",
        "cc-003",
    ),
    (r"def \w+\([^)]*=\s*(\[\]|\{\})", "Mutable default argument: default to None and create it inside.", "cc-004"),
    (r"\bprint\s*\(", "print() in code: use the logging module.", "cc-005"),
    (r"\b(TODO|FIXME)\b", "Unresolved TODO/FIXME: turn it into an issue or fix it.", "cc-006"),
    (r"import \*", "Wildcard import hides where names come from: import them explicitly.", "cc-006"),
)


def _code_findings(text: str) -> list[Finding]:
    findings = []
    for pattern, finding, guideline in _CODE_CHECKS:
        match = re.search(pattern, text)
        if match:
            start = text.rfind("\n", 0, match.start()) + 1
            end = text.find("\n", start)
            findings.append(Finding(finding, guideline, text[start : end if end >= 0 else None].strip()))
    if any(len(line) > 100 for line in text.splitlines()):
        findings.append(Finding("Lines longer than 100 characters: wrap them for readability.", "cc-006"))
    return findings


def _assignment(task_message: str, digest: int) -> str:
    """A practice prompt for the task; which of its parts it has is fixed by the hash, so reviews vary."""
    task = re.sub(r"</?task>", "", task_message).strip()
    parts = [
        "You are a patient programming tutor for a learner who knows basic Python." if digest & 1 else "",
        f"Task: {task}",
        "Answer with a numbered list of steps, then the code in one block." if digest & 2 else "",
        "For example, for 'reverse a list' the steps are: read the input, build the result, test it."
        if digest & 4
        else "",
        "The code must have at most 40 lines and must not use third-party packages." if digest & 8 else "",
    ]
    return "\n".join(part for part in parts if part)


def _redact(text: str, secret: Secret) -> str:
    """Remove the key, and anything shaped like a provider key, from text bound for logs."""
    if secret.reveal():
        text = text.replace(secret.reveal(), "[redacted]")
    return re.sub(r"\bsk-[A-Za-z0-9_\-*.]{6,}", "[redacted]", text)


class _HttpProvider:
    """Shared HTTP plumbing: client, retries, server address for telemetry, error mapping, redaction."""

    system: str

    def __init__(
        self,
        api_key: Secret,
        *,
        base_url: str,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._sleep, self._rand, self._clock = sleep, rand, clock
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            transport=transport,
            headers={"user-agent": f"llm-infra-lab-agent/{__version__}"},
        )
        url = httpx.URL(base_url)
        self.server_address: str | None = url.host
        self.server_port: int | None = server_port(url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._client.base_url)!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(
        self, path: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The response's JSON and the error types of the attempts retried before it.

        Every attempt, and every wait between two, fits in one deadline of `timeout_s`; a retry
        that could not start before it is not made. Each retry is an event on the current span.
        """
        deadline = self._clock() + self.timeout_s
        retried: list[str] = []
        while True:
            remaining = deadline - self._clock()
            try:
                async with asyncio.timeout(max(0.0, min(remaining, self.retry.attempt_timeout_s))):
                    return await self._attempt(path, payload, headers), tuple(retried)
            except TimeoutError:
                error = ProviderError(f"{self.system} request timed out", error_type="timeout", retryable=True)
            except ProviderError as exc:
                error = exc
            delay = (
                error.retry_after_s
                if error.retry_after_s is not None
                else self.retry.backoff(len(retried), self._rand())
            )
            if (
                not error.retryable
                or len(retried) >= self.retry.max_retries
                or delay > MAX_RETRY_AFTER_S
                or self._clock() + delay >= deadline
            ):
                error.retries = tuple(retried)
                raise error
            retried.append(error.error_type)
            trace.get_current_span().add_event(
                sc.EVENT_LLM_RETRY,
                {
                    sc.AGENT_RETRY_ATTEMPT: len(retried),
                    sc.ERROR_TYPE: error.error_type,
                    sc.AGENT_RETRY_DELAY: round(delay, 3),
                },
            )
            await self._sleep(delay)

    async def _attempt(self, path: str, payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._client.post(path, json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise ProviderError(f"{self.system} request timed out", error_type="timeout", retryable=True) from exc
        except httpx.TransportError as exc:  # connection refused or reset, protocol errors: transient
            raise ProviderError(
                f"{self.system} request failed: {type(exc).__name__}", error_type=type(exc).__name__, retryable=True
            ) from exc
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
        # An error message may quote the request: no key, no PII goes into logs and spans.
        message = redact(_redact(message, self._api_key)).text[:300]
        status = response.status_code
        # Both providers may say outright whether a retry can help; otherwise the status decides.
        should_retry = response.headers.get("x-should-retry", "").lower()
        retryable = should_retry == "true" or (
            should_retry != "false" and (status in RETRYABLE_STATUS or status >= 500)
        )
        return ProviderError(
            f"{self.system} returned HTTP {status}: {message}".rstrip(": "),
            error_type=error_type,
            status_code=status,
            retryable=retryable,
            retry_after_s=retry_after_seconds(response.headers) if retryable else None,
        )


def _usage(data: dict[str, Any], *keys: str) -> int:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        raise ProviderError("response has no usage", error_type="invalid_response")
    return sum(_count(usage.get(key)) for key in keys)


def _count(value: object) -> int:
    """A token count from JSON: a non-negative int, anything else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _anthropic_cache_writes(usage: dict[str, Any]) -> tuple[int, int]:
    """(5-minute, 1-hour) cache writes; without the `cache_creation` breakdown all are 5-minute."""
    total = _count(usage.get("cache_creation_input_tokens"))
    breakdown = usage.get("cache_creation")
    if isinstance(breakdown, dict):
        one_hour = min(total, _count(breakdown.get("ephemeral_1h_input_tokens")))
        return total - one_hour, one_hour
    return total, 0


class AnthropicProvider(_HttpProvider):
    """Anthropic Messages API: POST {base}/v1/messages with x-api-key and anthropic-version."""

    system = "anthropic"

    async def chat(self, request: ChatRequest) -> ChatResult:
        data, retries = await self._post(
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
        _usage(data)  # a usage block is required
        writes_5m, writes_1h = _anthropic_cache_writes(data["usage"])
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
            retries=retries,
            cache_read_tokens=_count(data["usage"].get("cache_read_input_tokens")),
            cache_write_tokens=writes_5m,
            cache_write_1h_tokens=writes_1h,
        )


class OpenAIProvider(_HttpProvider):
    """OpenAI Chat Completions API: POST {base}/chat/completions with a bearer token."""

    system = "openai"

    async def chat(self, request: ChatRequest) -> ChatResult:
        data, retries = await self._post(
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
        input_tokens = _usage(data, "prompt_tokens")
        details = data["usage"].get("prompt_tokens_details")
        details = details if isinstance(details, dict) else {}
        return ChatResult(
            text=str((choice.get("message") or {}).get("content") or ""),
            model=str(data.get("model") or request.model),
            input_tokens=input_tokens,
            output_tokens=_usage(data, "completion_tokens"),
            response_id=data.get("id"),
            finish_reason=choice.get("finish_reason"),
            retries=retries,
            # prompt_tokens includes the cached ones, which are billed at the cached-input rate.
            cache_read_tokens=min(input_tokens, _count(details.get("cached_tokens"))),
        )


class LocalProvider(OpenAIProvider):
    """A local model behind an OpenAI-compatible endpoint (Ollama, vLLM): no per-token cost."""

    system = "local"
    free = True


def make_local_provider(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> LLMProvider | None:
    """The cheap route's local model when LLM_LOCAL_BASE_URL is set, else None."""
    if not settings.local_base_url:
        return None
    return LocalProvider(
        settings.local_api_key or Secret("local"),
        base_url=settings.local_base_url,
        timeout_s=settings.llm_timeout_s,
        retry=RetryPolicy(max_retries=settings.llm_max_retries, attempt_timeout_s=settings.llm_attempt_timeout_s),
        transport=transport,
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
    return cls(
        settings.api_key,
        base_url=settings.base_url,
        timeout_s=settings.llm_timeout_s,
        retry=RetryPolicy(max_retries=settings.llm_max_retries, attempt_timeout_s=settings.llm_attempt_timeout_s),
        transport=transport,
    )
