"""Guardrails: PII redaction on the way in and out, and a prompt-injection heuristic. No network.

Redaction runs before the text reaches anything else (the cache, Qdrant, the LLM, a log line), and
again on the review before it is answered or cached. What it finds is replaced by a typed marker
(`[REDACTED_EMAIL]`, ...) so a review can still say "a hard-coded key" without repeating it.

PII types:
- `api_key`: provider and platform key formats (`sk-…`, `sk-ant-…`, AWS `AKIA…`/`ASIA…`, GitHub
  `ghp_…`/`github_pat_…`, GitLab `glpat-…`, Slack `xox?-…`, Google `AIza…`, Stripe `sk_live_…`),
  JWTs, PEM private keys, and a quoted value of 8+ characters assigned to a name containing
  `api_key`, `secret`, `token` or `password`.
- `email`: `local@domain.tld`.
- `card`: 13-19 digits, single spaces or dashes allowed between them, passing the Luhn check.
- `phone`: `+` and 8-15 digits in groups, `(0xx) …`, or 9-12 digits in at least three groups of
  which two have 3+ digits (`415-555-0100`, `020 7946 0958`); not dates, IP addresses, versions.

The injection check flags a text when one of these rules matches (after Unicode NFKC
normalization, zero-width characters removed, lower case). It flags, it does not block: the
prompt reviewer's job includes reviewing prompts that contain injections. A flagged request is
counted, logged and routed to the strong model.
- `ignore_instructions`: ignore / disregard / forget / override … previous / prior / above / all
  … instructions / prompts / rules.
- `reveal_prompt`: reveal / print / show / repeat / output … system / hidden / initial / original
  / developer prompt or instructions.
- `role_override`: you are now / from now on you / pretend / act as … DAN / jailbroken /
  unrestricted / unfiltered / no rules / developer mode.
- `jailbreak_terms`: jailbreak, "do anything now", developer mode, DAN mode.
- `fence_break`: a closing tag of a prompt fence (`</prompt>`, `</code>`, `</system>`, …).
- `chat_markup`: chat-template tokens (im_start, im_end, endoftext between `<|` and `|>`,
  `[INST]`, `<<SYS>>`).
- `new_instructions`: "new / updated / real instructions:".
- `exfiltration`: send / post / upload / forward … keys / passwords / secrets / credentials … to a
  URL or an address.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

PII_EMAIL = "email"
PII_PHONE = "phone"
PII_CARD = "card"
PII_API_KEY = "api_key"
PII_TYPES = (PII_API_KEY, PII_EMAIL, PII_CARD, PII_PHONE)

_KEY_PATTERNS = (
    r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY-----",
    r"\bsk-(?:ant-|proj-|live-|test-|svcacct-)?[A-Za-z0-9_\-]{8,}",
    r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    r"\bglpat-[A-Za-z0-9_\-]{20,}\b",
    r"\bxox[abprs]-[A-Za-z0-9\-]{10,}\b",
    r"\bAIza[0-9A-Za-z_\-]{35}\b",
    r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
)
_KEY = re.compile("|".join(f"(?:{p})" for p in _KEY_PATTERNS))
# The value of `api_key = "…"`, `"password": "…"`, `TOKEN='…'`: group 1 keeps the name and quote.
_ASSIGNED_SECRET = re.compile(
    r"""(?i)(\b[\w.-]*(?:api[_-]?key|secret|token|passw(?:or)?d|pwd)[\w.-]*["']?\s*[:=]\s*["'])"""
    r"""(?!\[REDACTED_)([^"'\s]{8,})(?=["'])"""
)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w.+/-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{1,4}){1,5}(?![\w/-]|\.\d)"
)
_DATE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$")
_DOTTED = re.compile(r"^\d{1,3}(?:\.\d{1,3}){2,}$")  # IP addresses, version numbers


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_card(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and luhn_valid(digits) and len(set(digits)) > 1


def _is_phone(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if _DATE.match(candidate) or _DOTTED.match(candidate):
        return False
    if candidate.startswith("+") or "(" in candidate:
        return 8 <= len(digits) <= 15
    groups = re.findall(r"\d+", candidate)
    return 9 <= len(digits) <= 12 and len(groups) >= 3 and sum(len(g) >= 3 for g in groups) >= 2


_MARKERS = {kind: f"[REDACTED_{kind.upper()}]" for kind in PII_TYPES}


@dataclass(frozen=True)
class Redaction:
    text: str
    counts: Mapping[str, int] = field(default_factory=dict)
    """How many of each PII type were replaced; empty when the text was clean."""

    @property
    def types(self) -> list[str]:
        return sorted(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def redact(text: str) -> Redaction:
    """The text with every e-mail address, phone number, card number and API key replaced."""
    counts: Counter[str] = Counter()

    def substitute(kind: str, pattern: re.Pattern[str], text: str, valid: Callable[[str], bool] | None = None) -> str:
        def replace(match: re.Match[str]) -> str:
            if valid is not None and not valid(match.group(0)):
                return match.group(0)
            counts[kind] += 1
            return _MARKERS[kind]

        return pattern.sub(replace, text)

    # Keys first: their digits and @ signs must not be taken for phones or addresses.
    text = substitute(PII_API_KEY, _KEY, text)

    def assigned(match: re.Match[str]) -> str:
        counts[PII_API_KEY] += 1
        return match.group(1) + _MARKERS[PII_API_KEY]

    text = _ASSIGNED_SECRET.sub(assigned, text)
    text = substitute(PII_EMAIL, _EMAIL, text)
    text = substitute(PII_CARD, _CARD, text, _is_card)
    text = substitute(PII_PHONE, _PHONE, text, _is_phone)
    return Redaction(text, dict(counts))


_INJECTION_RULES: tuple[tuple[str, str], ...] = (
    (
        "ignore_instructions",
        r"\b(?:ignore|disregard|forget|override|skip|bypass)\b[^.\n]{0,40}?"
        r"\b(?:previous|prior|above|earlier|preceding|all|any|your|the|these|those|system)\b[^.\n]{0,30}?"
        r"\b(?:instructions?|prompts?|rules|guidelines|directions|directives|constraints|guardrails)\b",
    ),
    (
        "reveal_prompt",
        r"\b(?:reveal|print|show|repeat|output|display|leak|dump|tell me|give me)\b[^.\n]{0,40}?"
        r"\b(?:system|hidden|initial|original|secret|developer|internal)\s+(?:prompts?|instructions?|messages?|rules)\b",
    ),
    (
        "role_override",
        r"\b(?:you are now|from now on,? you|pretend (?:to be|you are)|act as|roleplay as|you will now be)\b"
        r"[^.\n]{0,40}?\b(?:dan|jailbr\w*|unrestricted|unfiltered|uncensored|no (?:rules|restrictions|limits|filters)"
        r"|developer mode|without (?:any )?(?:rules|restrictions|limits|filters))\b",
    ),
    ("jailbreak_terms", r"\b(?:jailbreak\w*|do anything now|developer mode|dan mode|god mode)\b"),
    ("fence_break", r"<\s*/\s*(?:prompt|code|system|instructions?|user|context|data)\s*>"),
    ("chat_markup", r"<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>|\[/?inst\]|<<\s*/?sys\s*>>"),
    ("new_instructions", r"\b(?:new|updated|real|actual|true)\s+(?:instructions?|task|rules|system prompt)\s*:"),
    (
        "exfiltration",
        r"\b(?:send|post|upload|exfiltrate|forward|email|leak)\b[^.\n]{0,40}?"
        r"\b(?:api[ _-]?keys?|passwords?|secrets?|credentials|tokens?|env(?:ironment)? variables)\b[^.\n]{0,40}?"
        r"\b(?:to|at)\s+(?:https?://|\S+@|\[redacted_email\])",
    ),
)
INJECTION_RULES = tuple(rule for rule, _ in _INJECTION_RULES)
_COMPILED_RULES = tuple((rule, re.compile(pattern)) for rule, pattern in _INJECTION_RULES)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def injection_rules(text: str) -> list[str]:
    """The ids of the injection rules the text matches, in the table's order; empty if none."""
    normalized = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).lower()
    normalized = re.sub(r"[ \t]+", " ", normalized)
    return [rule for rule, pattern in _COMPILED_RULES if pattern.search(normalized)]


@dataclass(frozen=True)
class InputCheck:
    """The input guardrails' verdict: the text to use from here on, and what was found."""

    text: str
    pii: Redaction
    injection: list[str]
    """Ids of the injection rules that matched; empty when none did."""


def check_input(text: str) -> InputCheck:
    redaction = redact(text)
    return InputCheck(text=redaction.text, pii=redaction, injection=injection_rules(text))
