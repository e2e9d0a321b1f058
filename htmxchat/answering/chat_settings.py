"""Per-chat settings: a conversation's own system prompt, model and sampling parameters.

Stored in the chat log (table `chat_settings`), validated here with messages the user can act
on, merged over the app-wide defaults, and recorded with every answer as its provenance
(docs/design.md, "Who answers").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

MAX_SYSTEM_PROMPT = 20_000
MAX_MODEL_CHOICE = 600
MAX_TOKENS_LIMIT = 1_000_000
SEED_LIMIT = 2**63  # servers take a 64-bit signed seed


class SettingsError(ValueError):
    """A setting the user entered is not usable; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What a conversation sets for itself; None means "use the app-wide default"."""

    system_prompt: str | None = None
    model: str | None = None  # a model picker value (see connections.py)
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    def params(self) -> dict[str, object]:
        """The sampling parameters that are set, as the request body names them."""
        values = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        return {k: v for k, v in values.items() if v is not None}

    def over(self, defaults: ChatSettings) -> ChatSettings:
        """These settings with every unset one taken from `defaults`."""
        return replace(
            self,
            **{
                f.name: getattr(defaults, f.name)
                for f in fields(self)
                if getattr(self, f.name) is None
            },
        )

    def to_dict(self) -> dict[str, object]:
        """The set values only (what the chat log stores)."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


@dataclass(frozen=True, slots=True)
class Preset:
    """A named set of settings applied in one click."""

    key: str
    name: str
    settings: ChatSettings


PRESETS: tuple[Preset, ...] = (
    Preset(
        "coder",
        "Coder",
        ChatSettings(
            system_prompt=(
                "You are an expert programmer. Answer with working code first, then a short "
                "explanation. Point out bugs and edge cases."
            ),
            temperature=0.2,
        ),
    ),
    Preset(
        "translator",
        "Translator",
        ChatSettings(
            system_prompt=(
                "You are a translator. Translate the user's text into English (or, if it is "
                "English, into the language they ask for). Reply with the translation only."
            ),
            temperature=0.3,
        ),
    ),
    Preset(
        "concise",
        "Concise",
        ChatSettings(
            system_prompt="Answer as briefly as possible: one or two sentences, no preamble.",
            temperature=0.5,
            max_tokens=256,
        ),
    ),
    Preset(
        "creative",
        "Creative",
        ChatSettings(
            system_prompt="You are an imaginative writer. Be vivid and original.",
            temperature=1.1,
            top_p=0.95,
        ),
    ),
)


def preset(key: str) -> Preset | None:
    """The built-in preset called `key`, if any."""
    return next((p for p in PRESETS if p.key == key), None)


def parse_form(form: Mapping[str, Any]) -> ChatSettings:
    """Settings from the panel's form fields (blank: the default); SettingsError if bad."""
    return ChatSettings(
        system_prompt=_text(form.get("system_prompt"), "The system prompt", MAX_SYSTEM_PROMPT),
        model=_text(form.get("model"), "The model", MAX_MODEL_CHOICE),
        temperature=_float(form.get("temperature"), "Temperature", 0.0, 2.0),
        top_p=_float(form.get("top_p"), "Top p", 0.0, 1.0),
        max_tokens=_int(form.get("max_tokens"), "Max tokens", 1, MAX_TOKENS_LIMIT),
        seed=_int(form.get("seed"), "Seed", -SEED_LIMIT, SEED_LIMIT - 1),
    )


def from_stored(data: Mapping[str, object]) -> ChatSettings:
    """Settings as the chat log holds them; anything unusable there is dropped, not fatal."""
    form = {k: "" if v is None else str(v) for k, v in data.items()}
    values: dict[str, Any] = {}
    for f in fields(ChatSettings):
        try:
            values[f.name] = getattr(parse_form({f.name: form.get(f.name, "")}), f.name)
        except SettingsError:
            values[f.name] = None
    return ChatSettings(**values)


def _blank(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SettingsError("The form sent something that is not text; reload the page.")
    return value.strip() or None


def _text(value: object, label: str, limit: int) -> str | None:
    text = _blank(value)
    if text is not None and len(text) > limit:
        raise SettingsError(f"{label} is {len(text):,} characters long; the limit is {limit:,}.")
    return text


def _float(value: object, label: str, low: float, high: float) -> float | None:
    text = _blank(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise SettingsError(f"{label} must be a number from {low:g} to {high:g}.") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise SettingsError(f"{label} must be from {low:g} to {high:g}, not {text[:20]}.")
    return number


def _int(value: object, label: str, low: int, high: int) -> int | None:
    text = _blank(value)
    if text is None:
        return None
    if len(text) > 24 or not text.lstrip("+-").isdigit():
        what = "a positive whole number" if low > 0 else "a whole number"
        raise SettingsError(f"{label} must be {what}, not {text[:24]!r}.")
    number = int(text)
    if not low <= number <= high:
        what = f"from {low:,} to {high:,}" if low > 0 else "a 64-bit whole number"
        raise SettingsError(f"{label} must be {what}.")
    return number
