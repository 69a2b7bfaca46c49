"""Construction: backends, policies, sessions and session factories from options dataclasses.

Every front-end builds through here: the CLI (which only parses flags into these specs), the Python API, the
server, the SimulEval agent, and Ray's evaluation actors and serving replicas (which receive the specs pickled).
A ``ModelSpec`` names the shared model; a ``SessionSpec`` what each session makes of it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

from simulst import registry
from simulst.cascade import CascadeOptions
from simulst.clock import Clock, wall_clock
from simulst.errors import OptionError
from simulst.options import SessionOptions, from_mapping
from simulst.session import Session, SessionFactory, SessionLike
from simulst.streaming.speech import SpeechOptions

DEFAULT_BACKEND = "whisper"
DEFAULT_POLICY = "alignatt"
ROUTED = ("model", "threads", "device", "dtype")
"""The default backend's options a model directory of another family takes with it to that family's backend."""
SERVED_ENCODER_WORKERS = 2
"""CTranslate2 encoder workers of a backend that serves several sessions at once (a server, a Ray replica): their
passes run beside each other and beside the batched decoder (a lone session runs 5% faster on one)."""


@dataclass(frozen=True)
class ModelSpec:
    """The shared model: a registered backend and its options (None: the backend's defaults)."""

    backend: str = DEFAULT_BACKEND
    options: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _options_of(registry.backends.get(self.backend), self.options, f"{self.backend} backend"))


@dataclass(frozen=True)
class SessionSpec:
    """What one session makes of the shared model: its options, its policy, the text side of a cascade, and
    speech output (None: text only)."""

    options: SessionOptions = field(default_factory=SessionOptions)
    policy: str = DEFAULT_POLICY
    policy_options: Any = None
    cascade: CascadeOptions = field(default_factory=CascadeOptions)
    speech: SpeechOptions | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy_options", _options_of(registry.policies.get(self.policy), self.policy_options, f"{self.policy} policy"))


def _options_of(cls: type, options: Any, what: str):
    """``options`` as ``cls.Options``: None gives its defaults, a mapping is validated against it."""
    if options is None or isinstance(options, Mapping):
        return from_mapping(cls.Options, options or {}, what)
    if not isinstance(options, cls.Options):
        raise OptionError(f"the {what} takes {cls.Options.__name__}, not {type(options).__name__}")
    return options


def backend(name: str = DEFAULT_BACKEND, options: Any = None):
    """The shared backend for these options (built once per process)."""
    return model(ModelSpec(name, options))


@lru_cache(maxsize=4)
def model(spec: ModelSpec):
    """The shared backend ``spec`` names (built once per process); a model directory of another family than the
    default backend's goes to that family's backend (``routed``)."""
    spec = routed(spec)
    return registry.backends.get(spec.backend)(spec.options)


def routed(spec: ModelSpec) -> ModelSpec:
    """``spec``, or, where the default backend is asked for a local model directory of another architecture, the
    backend registered for that architecture (any other speech encoder-decoder: ``seq2seq``), with the options
    that carry over (``ROUTED``). An architecture nothing runs is refused."""
    from simulst.models.seq2seq import model_type, speech_seq2seq

    if spec.backend != DEFAULT_BACKEND:
        return spec
    kind = model_type(spec.options.model)
    if kind is None or kind in registry.backends.get(DEFAULT_BACKEND).model_types:
        return spec
    name = next((n for n in registry.backends.names() if kind in registry.backends.get(n).model_types), None)
    if name is None and speech_seq2seq(kind):
        name = "seq2seq"
    if name is None:
        families = sorted({t for n in registry.backends.names() for t in registry.backends.get(n).model_types})
        raise OptionError(f"{spec.options.model} holds a {kind!r} model, which simulst cannot run: speech encoder-decoders "
                          f"only ({', '.join(families)}, and others transformers loads as AutoModelForSpeechSeq2Seq)")
    values = dataclasses.asdict(spec.options)
    return ModelSpec(name, {k: values[k] for k in ROUTED if k in {f.name for f in dataclasses.fields(registry.backends.get(name).Options)}})


def policy(name: str = DEFAULT_POLICY, options: Mapping[str, Any] | Any = None):
    """A fresh policy; ``options`` is its options dataclass or a mapping validated against it."""
    cls = registry.policies.get(name)
    return cls(_options_of(cls, options, f"{name} policy"))


@lru_cache(maxsize=8)
def translator(src: str, tgt: str, mt_model: str | None = None):
    """The shared text MT for a direction."""
    from simulst.models.mt import text_translator

    return text_translator(src, tgt, mt_model)


def session(shared, policy_obj, options: SessionOptions = SessionOptions(), clock: Clock = wall_clock, cascade: CascadeOptions | None = None):
    """A direct Session, or an ASR -> MT cascade where the model cannot translate directly (or when asked)."""
    from simulst.cascade import cascade_session

    cascade = cascade or CascadeOptions()
    direct = options.task == "transcribe" or (shared.translates(options) and not cascade.cascade)
    if direct:
        return Session(shared, policy_obj, options, clock)
    return cascade_session(shared, policy_obj, options, cascade, clock)


def make(shared, spec: SessionSpec, clock: Clock = wall_clock) -> SessionLike:
    """The session ``spec`` describes over the ``shared`` backend: direct or a cascade, speaking its output when
    ``spec.speech`` is set."""
    made = session(shared, policy(spec.policy, spec.policy_options), spec.options, clock, spec.cascade)
    if spec.speech is None:
        return made
    from simulst.streaming.speech import SpeakingSession, speaker_for

    options = spec.options
    target = options.src_lang if options.task == "transcribe" else options.tgt_lang
    if target is None:
        raise OptionError("speech needs the output language: give src_lang (transcribe) or tgt_lang")
    return SpeakingSession(made, speaker_for(target, spec.speech), spec.speech)


def factory(shared, spec: SessionSpec) -> SessionFactory:
    """Sessions as ``spec`` describes them over the ``shared`` backend, for each stream's own options (a data
    row's languages)."""
    return lambda options: make(shared, dataclasses.replace(spec, options=options))


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def core_share(parts: int) -> int:
    """This process's usable cores split ``parts`` ways (at least one each)."""
    return max(1, usable_cores() // parts)


def share(spec: ModelSpec, threads: int, workers: int = 1) -> ModelSpec:
    """The model on a share of the cores (a Ray actor, a server's model thread): the backend's ``on_cores``."""
    return dataclasses.replace(spec, options=registry.backends.get(spec.backend).on_cores(spec.options, threads, workers))


def served(spec: ModelSpec, model_threads: int = 1) -> ModelSpec:
    """The model of a server with ``model_threads`` model threads: more than one share the cores (each backend's
    unset threads become cores / N); CTranslate2's encoder gets two workers, or one per model thread."""
    return share(spec, core_share(model_threads) if model_threads > 1 else 0, max(model_threads, SERVED_ENCODER_WORKERS))
