"""Model routing: easy reviews to a cheap model, hard ones to the strong model (LLM_MODEL).

The rule, per agent, first match wins; it reads only the (redacted) text and the injection check,
so the route is known before the cache lookup, which is keyed by model and skips retrieval on a hit:

| reason | route | when |
|---|---|---|
| `routing_off` | strong | ROUTING=off: every review goes to LLM_MODEL |
| `injection` | strong | the input guardrail flagged a likely prompt injection (the strong model resists it better) |
| `length` | strong | the text is longer than ROUTING_MAX_CHEAP_TOKENS (about 4 characters a token) |
| `code_in_prompt` | strong | prompt-reviewer: the prompt embeds code (a ``` fence, or 2+ lines that read as code) |
| `complexity` | strong | code-critic: 6 or more decision points (if, for, while, except, case, and/or, ?:, …) |
|  |  | or nesting 4 or more levels deep |
| `simple` | cheap | anything else |

The cheap route is LLM_CHEAP_MODEL on the same provider, or LLM_LOCAL_MODEL on an OpenAI-compatible
endpoint (Ollama, vLLM) when LLM_LOCAL_BASE_URL is set; a local model costs nothing per token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.config import Settings
from agent.providers import LLMProvider, estimate_tokens
from agent.roles import CODE_CRITIC, PROMPT_REVIEWER

ROUTE_CHEAP = "cheap"
ROUTE_STRONG = "strong"

REASON_ROUTING_OFF = "routing_off"
REASON_INJECTION = "injection"
REASON_LENGTH = "length"
REASON_CODE_IN_PROMPT = "code_in_prompt"
REASON_COMPLEXITY = "complexity"
REASON_SIMPLE = "simple"

COMPLEXITY_LIMIT = 6
NESTING_LIMIT = 4

_CODE_LINE = re.compile(
    r"^\s*(?:def |class |async def |function |import |from \S+ import |return\b|if\s*\(|for\s*\(|while\s*\("
    r"|#include|public |private |const |let |var |SELECT\b.*\bFROM\b)"
    r"|[;{]\s*$|=>|^\s*}\s*$",
    re.IGNORECASE,
)
_DECISION = re.compile(r"\b(?:if|elif|else if|for|while|except|catch|case|and|or)\b|&&|\|\||\?(?!\?)")


def looks_like_code(text: str) -> bool:
    """A fenced block, or two or more lines that read as code."""
    return "```" in text or sum(1 for line in text.splitlines() if _CODE_LINE.search(line)) >= 2


def complexity(code: str) -> tuple[int, int]:
    """(decision points, deepest nesting level); a level is the smallest indentation the code uses."""
    decisions = len(_DECISION.findall(code))
    lines = [line.expandtabs(4) for line in code.splitlines() if line.strip()]
    indents = [len(line) - len(line.lstrip(" ")) for line in lines]
    unit = min((i for i in indents if i), default=4)
    return decisions, max((i // unit for i in indents), default=0)


def classify(role: str, text: str, *, injection: bool, max_cheap_tokens: int) -> tuple[str, str]:
    """(route, reason) for a text by the rule in the module docstring (routing on)."""
    if injection:
        return ROUTE_STRONG, REASON_INJECTION
    if estimate_tokens(text) > max_cheap_tokens:
        return ROUTE_STRONG, REASON_LENGTH
    if role == PROMPT_REVIEWER and looks_like_code(text):
        return ROUTE_STRONG, REASON_CODE_IN_PROMPT
    if role == CODE_CRITIC:
        decisions, nesting = complexity(text)
        if decisions >= COMPLEXITY_LIMIT or nesting >= NESTING_LIMIT:
            return ROUTE_STRONG, REASON_COMPLEXITY
    return ROUTE_CHEAP, REASON_SIMPLE


@dataclass(frozen=True)
class Route:
    name: str
    """ROUTE_CHEAP or ROUTE_STRONG (the agent.route attribute)."""
    reason: str
    """Why (agent.route.reason): one of the REASON_* values."""
    model: str
    provider: LLMProvider


class Router:
    def __init__(self, settings: Settings, provider: LLMProvider, cheap_provider: LLMProvider | None = None) -> None:
        """`provider` serves the strong route, and the cheap one unless `cheap_provider` is given."""
        self.settings = settings
        self.strong_provider = provider
        self.cheap_provider = cheap_provider or provider
        local = cheap_provider is not None and settings.local_model
        self.cheap_model = settings.local_model if local and settings.local_model else settings.cheap_model

    @property
    def strong_model(self) -> str:
        return self.settings.model

    def route(self, text: str, *, injection: bool) -> Route:
        if not self.settings.routing:
            return Route(ROUTE_STRONG, REASON_ROUTING_OFF, self.strong_model, self.strong_provider)
        name, reason = classify(
            self.settings.role, text, injection=injection, max_cheap_tokens=self.settings.routing_max_cheap_tokens
        )
        if name == ROUTE_CHEAP:
            return Route(name, reason, self.cheap_model, self.cheap_provider)
        return Route(name, reason, self.strong_model, self.strong_provider)
