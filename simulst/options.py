"""Options dataclasses are the single source of truth: CLI flags and server ``start`` fields come from them.

A field's ``metadata["help"]`` is its help text, ``metadata["min"]``/``["max"]`` its valid range; ``Literal``
types become choices. Every options class derives from ``Options``, which checks the ranges and choices when an
instance is made, so a bad value is refused alike from a flag, a start message, a sweep point or Python. Options
are frozen: derive new ones with ``dataclasses.replace``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from simulst.errors import OptionError


def opt(default: Any, help: str, min: float | None = None, max: float | None = None, **kw: Any) -> Any:
    """A dataclass field with help text and, for numbers, its valid range (inclusive)."""
    limits = {k: v for k, v in (("min", min), ("max", max)) if v is not None}
    return field(default=default, metadata={"help": help, **limits, **kw})


class Options:
    """Base of the options dataclasses: each field's choices and range are checked on construction; a subclass
    adds checks between fields in ``check``."""

    def __post_init__(self) -> None:
        for f, tp in _fields(type(self)):
            _check_field(f, tp, getattr(self, f.name), type(self).__name__)
        self.check()

    def check(self) -> None:
        """Checks between fields (raise ``OptionError``); none by default."""


def _check_field(f: dataclasses.Field, tp: Any, value: Any, owner: str) -> None:
    base, optional = _base_type(tp)
    if value is None:
        if not optional:
            raise OptionError(f"{f.name} must be given ({owner})")
        return
    if typing.get_origin(base) is Literal:
        if value not in typing.get_args(base):
            raise OptionError(f"{f.name} must be one of {', '.join(map(str, typing.get_args(base)))}, not {value!r}")
        return
    if base in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise OptionError(f"{f.name} must be a number, not {value!r}")
    if base is int and value != int(value):
        raise OptionError(f"{f.name} must be an integer, not {value!r}")
    low, high = f.metadata.get("min"), f.metadata.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        raise OptionError(f"{f.name} must be {_range(low, high)}, not {value!r}")


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {low:g} to {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


@dataclass(frozen=True)
class SessionOptions(Options):
    """What one streaming session does with its audio (per session; the model is shared)."""

    src_lang: str | None = opt(None, "source language code (de, fr, es, en, ...); detected from the first seconds if unset")
    tgt_lang: str = opt("en", "target language code; whisper translates into English only")
    task: Literal["translate", "transcribe"] = opt("translate", "translate into the target language, or transcribe the source")
    chunk_ms: int = opt(1000, "source audio (ms) read before each policy decision round", min=1)
    whole_words: bool = opt(True, "never commit part of a word: when the policy stops inside a word, hold the word back")
    partials: bool = opt(False, "also emit the provisional continuation after each round (costs extra decoding)")
    draft: bool = opt(
        True,
        "verify the previous round's provisional tokens as a draft in one parallel decoder pass (same tokens as "
        "step-by-step greedy decoding, fewer sequential decoder steps; helps re-translation, local-agreement, partials)",
    )
    max_tokens: int = opt(100, "most target tokens written in one decision round (a guard against runaway output)", min=1)
    max_rate: float = opt(8.0, "most committed target tokens per second of buffered audio, past --rate-headroom (guard 'rate')", min=0)
    rate_headroom: int = opt(16, "committed tokens always allowed in the buffered audio, however short it is", min=0)
    loop_times: int = opt(3, "an n-gram (up to 12 tokens) about to be written this many times in a row is not written (guard 'loop')", min=2)
    repeat_tokens: int = opt(12, "a span of this many tokens that repeats recent output is not written (guard 'repeat')", min=1)
    echo_tokens: int = opt(4, "a span of at least this many tokens written twice in a row loses its second copy (guard 'repeat')", min=1)
    max_compression: float = opt(
        2.4, "a round whose text makes the recent output compress (zlib) more than this is not written (guard 'compression'; Whisper's test)", min=1
    )
    max_buffer_ms: int = opt(15000, "audio kept for the model; past it, audio before the last committed word is dropped", min=2)
    context_tokens: int = opt(64, "committed tokens of dropped audio kept as the model's text context", min=0)
    restart_ms: int = opt(
        2000, "at the end of input or a pause, when the model ends its text right after the committed text although Silero VAD "
        "hears this much speech after that text's last attention peak, the text becomes context and that audio is decoded "
        "again (guard 'restart'; 0: never)", min=0,
    )
    prompt: str | None = opt(None, "initial context: text the model reads as if it had been said before the stream (topic, names, style); kept for the whole stream")
    terms: str | None = opt(
        None, "a glossary (names, technical terms), separated by newlines or ';'; on the command line also a file of them, "
        "one a line: where the model finds a term's next token nearly as likely as its best, the term's is written",
    )
    vad: bool = opt(False, "detect pauses with Silero VAD: at a pause, write out what was heard and start afresh")
    vad_pause_ms: int = opt(600, "silence (ms) that counts as a pause for --vad", min=1)

    def primer(self) -> str:
        """The text a model is primed with: the prompt (empty without one)."""
        return (self.prompt or "").strip()

    def glossary(self) -> list[str]:
        """The glossary's terms."""
        return [t.strip() for t in (self.terms or "").replace(";", "\n").splitlines() if t.strip()]

    def check(self) -> None:
        if self.max_buffer_ms < 2 * self.chunk_ms:
            raise OptionError(f"max_buffer_ms must be at least twice chunk_ms ({self.max_buffer_ms} < 2 x {self.chunk_ms})")


def _base_type(tp: Any) -> tuple[Any, bool]:
    """``(type, optional)`` with ``X | None`` unwrapped."""
    args = typing.get_args(tp)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def _converter(tp: Any):
    base, optional = _base_type(tp)
    if typing.get_origin(base) is Literal:
        return str, list(typing.get_args(base))
    if optional:
        return (lambda text: None if text.lower() in ("", "none", "auto") else base(text)), None
    return base, None


@functools.cache
def _fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def add_options(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """Add one flag per field of ``cls``: ``--{prefix}-{field}`` with dest ``{prefix}.{field}`` (a dotted prefix
    gives dashes in the flag); the help says the default and the valid range."""
    group = parser.add_argument_group(f"{prefix or cls.__name__} options", (cls.__doc__ or "").strip() or None)
    for f, tp in _fields(cls):
        flag = "--" + (f"{prefix.replace('.', '-')}-" if prefix else "") + f.name.replace("_", "-")
        dest = f"{prefix}.{f.name}" if prefix else f.name
        limits = f.metadata.get("min"), f.metadata.get("max")
        valid = f"; {_range(*limits)}" if limits != (None, None) else ""
        helptext = f"{f.metadata.get('help', '')} (default: {f.default}{valid})"
        if tp is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=f.default, help=helptext)
            continue
        conv, choices = _converter(tp)
        group.add_argument(flag, dest=dest, type=conv, choices=choices, default=f.default, help=helptext)


def from_namespace(cls: type, ns: argparse.Namespace, prefix: str = ""):
    """Build ``cls`` from the flags ``add_options`` added."""
    values = vars(ns)
    return cls(**{f.name: values[f"{prefix}.{f.name}" if prefix else f.name] for f, _ in _fields(cls)})


def from_mapping(cls: type, data: Mapping[str, Any], what: str = ""):
    """Build ``cls`` from a mapping (a server message, a sweep point), validating names, types and choices."""
    known = {f.name: tp for f, tp in _fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise OptionError(f"unknown {what or cls.__name__} option(s): {', '.join(unknown)}; known: {', '.join(known)}")
    values = {}
    for name, value in data.items():
        base, _ = _base_type(known[name])
        values[name] = value if value is None or typing.get_origin(base) is Literal else _convert(name, base, value)
    return cls(**values)


def _convert(name: str, base: type, value: Any) -> Any:
    """``value`` (from JSON or a command line's text) as a ``base``; the range is checked on construction."""
    if base is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            value = value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise OptionError(f"{name} must be true or false, not {value!r}")
        return value
    if isinstance(value, bool) and base is not str:
        raise OptionError(f"{name} must be {base.__name__}, not {value!r}")
    try:
        converted = base(value)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be {base.__name__}, not {value!r}") from None
    if base is int and isinstance(value, float) and value != converted:
        raise OptionError(f"{name} must be an integer, not {value!r}")
    return converted
