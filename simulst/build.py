"""Building backends, policies and sessions from names and option mappings (shared by every front-end)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from simulst import registry
from simulst.clock import Clock, wall_clock
from simulst.options import SessionOptions, from_mapping
from simulst.session import Session

DEFAULT_BACKEND = "whisper"


@lru_cache(maxsize=4)
def backend(name: str = DEFAULT_BACKEND, options: Any = None):
    """The shared backend for these options (built once per process)."""
    cls = registry.backends.get(name)
    return cls(options if options is not None else cls.Options())


def policy(name: str, options: Mapping[str, Any] | Any = None):
    """A fresh policy; ``options`` is its options dataclass or a mapping validated against it."""
    cls = registry.policies.get(name)
    if options is None or isinstance(options, Mapping):
        options = from_mapping(cls.Options, options or {}, f"{name} policy")
    return cls(options)


@lru_cache(maxsize=8)
def translator(src: str, tgt: str, mt_model: str | None = None):
    """The shared text MT for a direction."""
    from simulst.models.mt import text_translator

    return text_translator(src, tgt, mt_model)


def session(model, policy_obj, options: SessionOptions = SessionOptions(), clock: Clock = wall_clock, cascade=None):
    """A direct Session, or an ASR -> MT cascade where the model cannot translate directly (or when asked)."""
    from simulst.cascade import CascadeOptions, cascade_session

    cascade = cascade or CascadeOptions()
    direct = options.task == "transcribe" or (options.tgt_lang == "en" and not cascade.cascade)
    if direct:
        return Session(model, policy_obj, options, clock)
    return cascade_session(model, policy_obj, options, cascade, clock)
