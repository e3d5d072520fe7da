"""Prices per model, so every LLM call becomes dollars on a dashboard (`agent.llm.cost`).

USD per million tokens at standard rates (no batch, no prompt caching). Read on 2026-11-23 from
the providers' model pages (Anthropic: platform.claude.com "Models overview" and per-model pages;
OpenAI: developers.openai.com "Models" and per-model pages). Providers change prices and retire
models: update this table and the date above together.

Not modelled: Claude Haiku 5.5 bills 5x for prompts over 100K tokens, OpenAI GPT-5.6 2x/1.5x over
272K input tokens; this agent caps its input far below both (MAX_TEXT_CHARS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelPrice:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


PRICES: dict[str, ModelPrice] = {
    # Simulated models cost nothing to run; the nominal prices make the cost panels show data,
    # and keep the lab's default traffic (1 request/s, ~$12 a month) under its default $20 budget.
    "simulated-small": ModelPrice(0.01, 0.03),
    "simulated-large": ModelPrice(0.06, 0.30),
    # Anthropic (Messages API)
    "claude-haiku-5-5": ModelPrice(0.10, 0.50),
    "claude-sonnet-5-5": ModelPrice(2.00, 10.00),
    "claude-opus-5-5": ModelPrice(4.00, 20.00),
    "claude-haiku-4-5": ModelPrice(1.00, 5.00),
    # OpenAI (Chat Completions API)
    "gpt-5.6-luna": ModelPrice(0.20, 1.20),
    "gpt-5.6-terra": ModelPrice(2.00, 12.00),
    "gpt-5.6-sol": ModelPrice(4.00, 20.00),
    "gpt-6-astra": ModelPrice(10.00, 50.00),
}

# The cheapest current model of each provider: the lab sends steady traffic, so cost matters more
# than capability for a review agent.
DEFAULT_MODELS = {
    "simulated": "simulated-small",
    "anthropic": "claude-haiku-5-5",
    "openai": "gpt-5.6-luna",
}

_SNAPSHOT_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


def price_for(model: str) -> ModelPrice | None:
    """The price of a model id, also for dated snapshots (`claude-haiku-4-5-20251001`)."""
    return PRICES.get(model) or PRICES.get(_SNAPSHOT_SUFFIX.sub("", model))


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Dollars for one call, or None when the model is not in the table."""
    price = price_for(model)
    return None if price is None else price.cost(input_tokens, output_tokens)
