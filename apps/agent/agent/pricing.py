"""Prices per model, so every LLM call becomes dollars on a dashboard (`agent.llm.cost`).

USD per million tokens at standard rates (no batch). Read on 2026-11-23 from the providers' model
pages (Anthropic: platform.claude.com "Models overview", per-model pages and "Prompt caching";
OpenAI: developers.openai.com "Models" and per-model pages). Providers change prices and retire
models: update this table and the date above together.

Prompt caching: input tokens read from the provider's prompt cache are billed far below the input
rate, and Anthropic bills writing them at a premium. Anthropic: cache reads 0.1x the input price,
5-minute cache writes 1.25x, 1-hour writes 2x. OpenAI (GPT-5 family): cached input 0.1x, writes
at the plain input rate. The token counts come from each API's usage block (see providers.py);
every input token is still counted once in gen_ai.usage.input_tokens, as the conventions ask.

Not modelled: Claude Haiku 5.5 bills 5x for prompts over 100K tokens, OpenAI GPT-5.6 2x/1.5x over
272K input tokens; this agent caps its input far below both (MAX_TEXT_CHARS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    """Tokens of one call. `input_tokens` counts all input, cached or not (as gen_ai.usage.input_tokens)."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    """Input tokens read from the provider's prompt cache."""
    cache_write_tokens: int = 0
    """Input tokens written to the prompt cache with the default (5-minute) lifetime."""
    cache_write_1h_tokens: int = 0
    """Input tokens written to the prompt cache with a 1-hour lifetime (Anthropic)."""

    @property
    def uncached_input_tokens(self) -> int:
        return max(0, self.input_tokens - self.cache_read_tokens - self.cache_write_tokens - self.cache_write_1h_tokens)


@dataclass(frozen=True)
class ModelPrice:
    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None
    """None: the model has no prompt-cache discount; cache reads cost the input price."""
    cache_write_per_mtok: float | None = None
    cache_write_1h_per_mtok: float | None = None

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Dollars for tokens without any prompt caching."""
        return self.cost_of(Usage(input_tokens, output_tokens))

    def cost_of(self, usage: Usage) -> float:
        """Dollars for one call, each kind of input token at its own rate."""
        read = self.input_per_mtok if self.cache_read_per_mtok is None else self.cache_read_per_mtok
        write = self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok
        write_1h = write if self.cache_write_1h_per_mtok is None else self.cache_write_1h_per_mtok
        return (
            usage.uncached_input_tokens * self.input_per_mtok
            + usage.cache_read_tokens * read
            + usage.cache_write_tokens * write
            + usage.cache_write_1h_tokens * write_1h
            + usage.output_tokens * self.output_per_mtok
        ) / 1_000_000


def anthropic_price(input_per_mtok: float, output_per_mtok: float) -> ModelPrice:
    """Anthropic's prompt-caching multipliers: reads 0.1x, 5-minute writes 1.25x, 1-hour writes 2x."""
    return ModelPrice(
        input_per_mtok,
        output_per_mtok,
        cache_read_per_mtok=input_per_mtok * 0.1,
        cache_write_per_mtok=input_per_mtok * 1.25,
        cache_write_1h_per_mtok=input_per_mtok * 2,
    )


def openai_price(input_per_mtok: float, output_per_mtok: float) -> ModelPrice:
    """OpenAI's GPT-5 family: cached input 0.1x; writing the cache costs nothing extra."""
    return ModelPrice(input_per_mtok, output_per_mtok, cache_read_per_mtok=input_per_mtok * 0.1)


PRICES: dict[str, ModelPrice] = {
    # Simulated models cost nothing to run; the nominal prices make the cost panels show data.
    # simulated-small is the cheap route, simulated-large the strong one (LLM_MODEL).
    "simulated-small": ModelPrice(0.01, 0.03),
    "simulated-large": ModelPrice(0.06, 0.30),
    # Anthropic (Messages API)
    "claude-haiku-5-5": anthropic_price(0.10, 0.50),
    "claude-sonnet-5-5": anthropic_price(2.00, 10.00),
    "claude-opus-5-5": anthropic_price(4.00, 20.00),
    "claude-haiku-4-5": anthropic_price(1.00, 5.00),
    # OpenAI (Chat Completions API)
    "gpt-5.6-luna": openai_price(0.20, 1.20),
    "gpt-5.6-terra": openai_price(2.00, 12.00),
    "gpt-5.6-sol": openai_price(4.00, 20.00),
    "gpt-6-astra": openai_price(10.00, 50.00),
}

# The model of each provider that gets the hard reviews (all of them with ROUTING=off): LLM_MODEL.
# The simulated provider routes between its two models. For a real provider both defaults are its
# cheapest current model, since a real provider bills every request: the lab sends steady traffic,
# so cost matters more than capability; set LLM_MODEL to a stronger model to route hard reviews there.
DEFAULT_MODELS = {
    "simulated": "simulated-large",
    "anthropic": "claude-haiku-5-5",
    "openai": "gpt-5.6-luna",
}
# The model the router sends easy reviews to: LLM_CHEAP_MODEL.
CHEAP_MODELS = {
    "simulated": "simulated-small",
    "anthropic": "claude-haiku-5-5",
    "openai": "gpt-5.6-luna",
}

_SNAPSHOT_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


def price_for(model: str) -> ModelPrice | None:
    """The price of a model id, also for dated snapshots (`claude-haiku-4-5-20251001`)."""
    return PRICES.get(model) or PRICES.get(_SNAPSHOT_SUFFIX.sub("", model))


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Dollars for one call without prompt caching, or None when the model is not in the table."""
    return usage_cost_usd(model, Usage(input_tokens, output_tokens))


def usage_cost_usd(model: str, usage: Usage) -> float | None:
    """Dollars for one call, cached input at its own rates, or None when the model is not in the table."""
    price = price_for(model)
    return None if price is None else price.cost_of(usage)
