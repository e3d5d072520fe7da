"""LLM agent service for the lab: one codebase, run as `prompt-reviewer` and `code-critic`."""

__version__ = "0.1.0"
