"""The flags of a model and a session, one per option field, generated from the options dataclasses; shared by
the CLI and the SimulEval agent. A flag's dest is its key in sweeps (``alignatt.threshold_ms``, ``chunk_ms``).

Layout (``prefix`` empty on the CLI, ``simulst`` in SimulEval, which has flags of its own): ``--backend`` and
each backend's options (the default backend's as ``--{prefix}-*``, another's as ``--{prefix}-{backend}-*``);
``--policy`` and each policy's options as ``--{policy}-*``; the session's and the cascade's options as
``--{prefix}-*``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from simulst import registry
from simulst.build import DEFAULT_BACKEND, DEFAULT_POLICY, ModelSpec, SessionSpec
from simulst.cascade import CascadeOptions
from simulst.errors import OptionError
from simulst.options import SessionOptions, add_options, from_mapping, from_namespace
from simulst.streaming.speech import SpeechOptions


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def add_model(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--backend`` and every backend's options."""
    names = registry.backends.names()
    parser.add_argument(
        _flag(prefix, "backend"), dest=_join(prefix, "backend"), default=DEFAULT_BACKEND, choices=names,
        help="model backend: whisper (autoregressive, cross-attention for the policies) or nar (a CTC head over "
        "Whisper's encoder: one parallel pass per update, English transcription; use it with --policy retranslate) "
        f"(default: {DEFAULT_BACKEND})",
    )
    for name in names:
        cls = registry.backends.get(name)
        add_options(parser, cls.Options, _join(prefix, cls.prefix))


def add_session(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--policy``, every policy's options, the session's and the cascade's options."""
    parser.add_argument(_flag(prefix, "policy"), dest=_join(prefix, "policy"), default=DEFAULT_POLICY, choices=registry.policies.names(),
                        help=f"read/write policy (default: {DEFAULT_POLICY})")
    add_options(parser, SessionOptions, prefix)
    add_options(parser, CascadeOptions, prefix)
    for name in registry.policies.names():
        add_options(parser, registry.policies.get(name).Options, name)


def _flag(prefix: str, name: str) -> str:
    return "--" + "-".join(p for p in (prefix, name) if p)


def model_spec(ns: argparse.Namespace, prefix: str = "") -> ModelSpec:
    name = vars(ns)[_join(prefix, "backend")]
    cls = registry.backends.get(name)
    return ModelSpec(name, from_namespace(cls.Options, ns, _join(prefix, cls.prefix)))


def session_spec(ns: argparse.Namespace, speech: SpeechOptions | None = None, prefix: str = "") -> SessionSpec:
    """The session the flags describe; ``speech``: speak its output with these options. ``--terms`` may name a
    file of terms, one a line: its text becomes the option."""
    policy = vars(ns)[_join(prefix, "policy")]
    options = from_namespace(SessionOptions, ns, prefix)
    if options.terms and Path(options.terms).is_file():
        options = dataclasses.replace(options, terms=Path(options.terms).read_text(encoding="utf-8"))
    return SessionSpec(
        options, policy, from_namespace(registry.policies.get(policy).Options, ns, policy), from_namespace(CascadeOptions, ns, prefix), speech,
    )


def replace(model: ModelSpec, spec: SessionSpec, key: str, text: str) -> tuple[ModelSpec, SessionSpec]:
    """``model`` and ``spec`` with the option of flag dest ``key`` set to ``text`` (a sweep point)."""
    places = _places(model, spec)
    if key not in places:
        raise OptionError(f"no option {key!r} in this run: keys are {', '.join(sorted(places))}")
    options, put = places[key]
    name = key.rpartition(".")[2]
    return put(from_mapping(type(options), {**dataclasses.asdict(options), name: text}))


def keys(model: ModelSpec, spec: SessionSpec) -> list[str]:
    """Every option key of this model and session (what ``replace`` takes)."""
    return sorted(_places(model, spec))


def _places(model: ModelSpec, spec: SessionSpec) -> dict:
    """Flag dest -> (the options holding it, how to put changed options back into the model and session)."""
    change = dataclasses.replace
    groups = [
        ("", spec.options, lambda o: (model, change(spec, options=o))),
        ("", spec.cascade, lambda o: (model, change(spec, cascade=o))),
        (registry.backends.get(model.backend).prefix, model.options, lambda o: (change(model, options=o), spec)),
        (spec.policy, spec.policy_options, lambda o: (model, change(spec, policy_options=o))),
    ]
    if spec.speech is not None:
        groups.append(("", spec.speech, lambda o: (model, change(spec, speech=o))))
    return {_join(owner, f.name): (options, put) for owner, options, put in groups for f in dataclasses.fields(options)}
