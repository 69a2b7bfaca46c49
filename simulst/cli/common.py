"""What the commands share: the model and session flags, and the bundled sample clip."""

from __future__ import annotations

import argparse

from simulst import flags
from simulst.build import ModelSpec, SessionSpec
from simulst.options import add_options, from_namespace
from simulst.streaming.speech import SpeechOptions

SAMPLE = "sample"
"""The audio argument that names the bundled German clip."""


def add_model_flags(parser: argparse.ArgumentParser, speech: bool = False) -> None:
    """The backend, the policy, the session and the cascade flags (and speech output's options)."""
    flags.add_model(parser)
    flags.add_session(parser)
    if speech:
        add_options(parser, SpeechOptions)


def specs(ns: argparse.Namespace, speak: bool = False) -> tuple[ModelSpec, SessionSpec]:
    """The model and the session the flags describe; ``speak``: the session speaks its output."""
    return flags.model_spec(ns), flags.session_spec(ns, from_namespace(SpeechOptions, ns) if speak else None)


def sample_audio(ns: argparse.Namespace, path: str) -> str:
    """``path``, or the bundled clip for ``sample`` (whose language then is the source language unless given)."""
    if path != SAMPLE:
        return path
    from simulst.demos import SAMPLE_CLIP, SAMPLE_LANG

    ns.src_lang = ns.src_lang or SAMPLE_LANG
    return str(SAMPLE_CLIP)
