"""The environment contract: what the Pulumi side sets, and how bad values are reported."""

from __future__ import annotations

import pytest

from agent.__main__ import main
from agent.config import ConfigError, Secret, Settings
from agent.pricing import CHEAP_MODELS, DEFAULT_MODELS, price_for


def test_role_alone_gives_the_documented_defaults() -> None:
    settings = Settings.from_env({"AGENT_ROLE": "code-critic"})
    assert settings.role == "code-critic"
    assert settings.provider == "simulated"
    assert (settings.model, settings.cheap_model, settings.routing) == ("simulated-large", "simulated-small", True)
    assert settings.port == 8080
    assert settings.qdrant_url is None
    assert settings.qdrant_collection == "review-guidelines"
    assert (settings.retrieval_mode, settings.retrieval_rerank) == ("hybrid", True)
    assert settings.api_key is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "AGENT_ROLE is required: one of prompt-reviewer, code-critic"),
        ({"AGENT_ROLE": "poet"}, "AGENT_ROLE must be one of prompt-reviewer, code-critic, learning-cycle, got 'poet'"),
        ({"AGENT_ROLE": "code-critic", "LLM_PROVIDER": "gemini"}, "LLM_PROVIDER must be one of"),
        ({"AGENT_ROLE": "code-critic", "LLM_PROVIDER": "anthropic"}, "ANTHROPIC_API_KEY is required"),
        ({"AGENT_ROLE": "code-critic", "LLM_PROVIDER": "openai"}, "OPENAI_API_KEY is required"),
        ({"AGENT_ROLE": "code-critic", "PORT": "http"}, "PORT must be a number, got 'http'"),
        ({"AGENT_ROLE": "code-critic", "PORT": "70000"}, "PORT must be between 1 and 65535"),
        ({"AGENT_ROLE": "code-critic", "QDRANT_URL": "qdrant:6333"}, "QDRANT_URL must start with http://"),
        ({"AGENT_ROLE": "code-critic", "SIMULATED_ERROR_RATE": "nan"}, "SIMULATED_ERROR_RATE must be between"),
        ({"AGENT_ROLE": "code-critic", "AGENT_API_KEY": "short"}, "AGENT_API_KEY must have at least 16 characters"),
        (
            {"AGENT_ROLE": "code-critic", "RETRIEVAL_MODE": "bm25"},
            "RETRIEVAL_MODE must be one of hybrid, dense, sparse",
        ),
        ({"AGENT_ROLE": "code-critic", "RETRIEVAL_RERANK": "maybe"}, "RETRIEVAL_RERANK must be on or off"),
    ],
)
def test_invalid_settings_fail_with_a_clear_message(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match="invalid agent configuration") as raised:
        Settings.from_env(environ)
    assert expected in str(raised.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"AGENT_ROLE": "poet", "LLM_PROVIDER": "gemini", "PORT": "0"})
    message = str(raised.value)
    assert "AGENT_ROLE" in message and "LLM_PROVIDER" in message and "PORT" in message


@pytest.mark.parametrize("provider", ["simulated", "anthropic", "openai"])
def test_each_provider_has_a_priced_default_model(provider: str) -> None:
    settings = Settings.from_env(
        {"AGENT_ROLE": "prompt-reviewer", "LLM_PROVIDER": provider, "OPENAI_API_KEY": "k"} | {"ANTHROPIC_API_KEY": "k"}
    )
    assert settings.model == DEFAULT_MODELS[provider]
    assert settings.cheap_model == CHEAP_MODELS[provider]
    assert price_for(settings.model) is not None and price_for(settings.cheap_model) is not None


def test_real_provider_settings_read_the_key_model_and_base_url() -> None:
    settings = Settings.from_env(
        {
            "AGENT_ROLE": "prompt-reviewer",
            "LLM_PROVIDER": "anthropic",
            "LLM_MODEL": "claude-sonnet-5-5",
            "ANTHROPIC_API_KEY": "sk-ant-secret-value",
            "ANTHROPIC_BASE_URL": "http://proxy:8000",
            "QDRANT_URL": "http://qdrant:6333",
            "QDRANT_COLLECTION": "lab-guidelines",
            "PORT": "9000",
        }
    )
    assert settings.model == "claude-sonnet-5-5"
    assert settings.api_key is not None and settings.api_key.reveal() == "sk-ant-secret-value"
    assert settings.base_url == "http://proxy:8000"
    assert (settings.qdrant_url, settings.qdrant_collection, settings.port) == (
        "http://qdrant:6333",
        "lab-guidelines",
        9000,
    )


def test_the_api_key_never_shows_in_repr_or_str() -> None:
    settings = Settings.from_env(
        {"AGENT_ROLE": "code-critic", "LLM_PROVIDER": "openai", "OPENAI_API_KEY": "sk-xyz-123456"}
    )
    assert "sk-xyz-123456" not in repr(settings)
    assert "sk-xyz-123456" not in str(settings.api_key)
    assert "sk-xyz-123456" not in f"{settings.api_key}"
    assert repr(Secret("abc")) == "Secret('**********')"


def test_startup_with_a_bad_role_exits_2_with_the_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENT_ROLE", "poet")
    assert main() == 2
    assert (
        "AGENT_ROLE must be one of prompt-reviewer, code-critic, learning-cycle, got 'poet'" in capsys.readouterr().err
    )
