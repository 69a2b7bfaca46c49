"""Options dataclasses are the single source of truth: CLI flags and server ``start`` fields come from them.

A field's ``metadata["help"]`` is its help text; ``Literal`` types become choices. Options are frozen: derive
new ones with ``dataclasses.replace``.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from simulst.errors import OptionError


def opt(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with help text."""
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class SessionOptions:
    """What one streaming session does with its audio (per session; the model is shared)."""

    src_lang: str | None = opt(None, "source language code (de, fr, es, en, ...); detected from the first seconds if unset")
    tgt_lang: str = opt("en", "target language code; whisper translates into English only")
    task: Literal["translate", "transcribe"] = opt("translate", "translate into the target language, or transcribe the source")
    chunk_ms: int = opt(1000, "source audio (ms) read before each policy decision round")
    whole_words: bool = opt(True, "never commit part of a word: when the policy stops inside a word, hold the word back")
    partials: bool = opt(False, "also emit the provisional continuation after each round (costs extra decoding)")
    draft: bool = opt(
        True,
        "verify the previous round's provisional tokens as a draft in one parallel decoder pass (same tokens as "
        "step-by-step greedy decoding, fewer sequential decoder steps; helps re-translation, local-agreement, partials)",
    )
    max_tokens: int = opt(100, "most target tokens written in one decision round (a guard against runaway output)")
    max_rate: float = opt(8.0, "most committed target tokens per second of buffered audio, past --rate-headroom (guard 'rate')")
    rate_headroom: int = opt(16, "committed tokens always allowed in the buffered audio, however short it is")
    repeat_tokens: int = opt(12, "a span of this many tokens that repeats recent output is not written (guard 'repeat')")
    echo_tokens: int = opt(4, "a span of at least this many tokens written twice in a row loses its second copy (guard 'repeat')")
    max_compression: float = opt(
        2.4, "a round whose text makes the recent output compress (zlib) more than this is not written (guard 'compression'; Whisper's test)"
    )
    max_buffer_ms: int = opt(15000, "audio kept for the model; past it, audio before the last committed word is dropped")
    context_tokens: int = opt(64, "committed tokens of dropped audio kept as the model's text context")
    vad: bool = opt(False, "detect pauses with Silero VAD: at a pause, write out what was heard and start afresh")
    vad_pause_ms: int = opt(600, "silence (ms) that counts as a pause for --vad")


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


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def add_options(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """Add one flag per field of ``cls``: ``--{prefix}-{field}`` with dest ``{prefix}.{field}``."""
    group = parser.add_argument_group(f"{prefix or cls.__name__} options", (cls.__doc__ or "").strip() or None)
    for f, tp in _fields(cls):
        flag = "--" + (f"{prefix}-" if prefix else "") + f.name.replace("_", "-")
        dest = f"{prefix}.{f.name}" if prefix else f.name
        helptext = f"{f.metadata.get('help', '')} (default: {f.default})"
        if tp is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=f.default, help=helptext)
            continue
        conv, choices = _converter(tp)
        group.add_argument(flag, dest=dest, type=conv, choices=choices, default=f.default, help=helptext)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS has one)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


SERVED_ENCODER_WORKERS = 2
"""CTranslate2 encoder workers of a backend that serves several sessions at once (a server, a Ray replica): their
passes run beside each other and beside the batched decoder (a lone session runs 5% faster on one)."""


def core_share(parts: int) -> int:
    """This process's usable cores split ``parts`` ways (at least one each)."""
    return max(1, usable_cores() // parts)


def share_cores(options: dict, threads: int, workers: int = 1) -> argparse.Namespace:
    """A command line's options for a backend built on a share of the cores (a Ray actor, a server's model
    thread): each backend's unset ``threads`` becomes ``threads``; ``encoder_workers``, where there is one, at
    least ``workers`` (one per model thread; a larger ``--encoder-workers`` is kept)."""
    share = {k: threads for k, v in options.items() if threads and not v and (k == "threads" or k.endswith(".threads"))}
    if "encoder_workers" in options:
        share["encoder_workers"] = max(workers, options["encoder_workers"])
    return argparse.Namespace(**{**options, **share})


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
        base, optional = _base_type(known[name])
        if value is None and optional:
            values[name] = None
        elif typing.get_origin(base) is Literal:
            if value not in typing.get_args(base):
                raise OptionError(f"{name} must be one of {typing.get_args(base)}, not {value!r}")
            values[name] = value
        elif base is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                value = value.lower() in ("true", "1", "yes")
            if not isinstance(value, bool):
                raise OptionError(f"{name} must be true or false, not {value!r}")
            values[name] = value
        else:
            try:
                converted = base(value)
            except (TypeError, ValueError):
                raise OptionError(f"{name} must be {base.__name__}, not {value!r}") from None
            if base is int and isinstance(value, float) and value != converted:
                raise OptionError(f"{name} must be an integer, not {value!r}")
            values[name] = converted
    return cls(**values)
