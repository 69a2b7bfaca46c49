"""``simulst train-policy`` and ``train-nar``: the recipes that reproduce the shipped heads (``simulst.training``)."""

from __future__ import annotations

import argparse

from simulst import build
from simulst.options import add_options, from_namespace


def add_commands(sub) -> None:
    from simulst.models.whisper import WhisperOptions
    from simulst.training.nar import NarTrainOptions
    from simulst.training.policy import TrainOptions

    tp = sub.add_parser(
        "train-policy",
        help="train a learned policy's head on the frozen model (REINA, DAR): synthetic speech, cached features, training",
        description="Decodes every training utterance with the frozen model (its own full-audio output is the target), "
        "caches teacher-forced features at truncation points every --step-ms (OUTPUT/features, reused by later runs "
        "and resumed where an interrupted run stopped), and trains a small head; writes OUTPUT/KIND-MODEL.pt with its "
        "card OUTPUT/KIND-MODEL.json. Keep the rows you evaluate on (the development sets) out of --data.",
    )
    tp.add_argument("kind", choices=["reina", "dar"], help="the learned policy")
    tp.add_argument("--data", nargs="+", required=True, help="training data TSV(s): X->en rows are translated, English rows transcribed")
    tp.add_argument("--output", required=True, help="output directory")
    add_options(tp, TrainOptions)
    add_options(tp, WhisperOptions)
    tp.set_defaults(run=run_train_policy)

    tn = sub.add_parser(
        "train-nar",
        help="train the non-autoregressive CTC head over the frozen Whisper encoder (X->en translation, English transcription)",
        description="Sequence-level distillation: the frozen Whisper decodes every training row (English transcribed, "
        "other languages it knows translated into English) and aligns its output to the audio; the encoder states over "
        "each utterance and over --cuts truncations of it (whose targets are the tokens heard before the cut) are "
        "cached once (OUTPUT/cache, reused and resumed), then a CTC head over Whisper's tokens trains on the cache, "
        "on --device. Writes OUTPUT/ctc-MODEL.pt and its card OUTPUT/ctc-MODEL.json; use it with --backend nar "
        "--nar-head CARD. Keep the rows you evaluate on out of --data.",
    )
    tn.add_argument("--data", nargs="+", required=True, help="training data TSV(s): X->en rows are translated, English rows transcribed")
    tn.add_argument("--output", required=True, help="output directory")
    add_options(tn, NarTrainOptions)
    add_options(tn, WhisperOptions)
    tn.set_defaults(run=run_train_nar)


def run_train_policy(ns: argparse.Namespace) -> int:
    from rich.console import Console

    from simulst.models.whisper import WhisperOptions
    from simulst.training.policy import TrainOptions, train_policy

    backend = build.backend("whisper", from_namespace(WhisperOptions, ns))
    print(train_policy(ns.kind, ns.data, ns.output, from_namespace(TrainOptions, ns), backend, Console(stderr=True)))
    return 0


def run_train_nar(ns: argparse.Namespace) -> int:
    from rich.console import Console

    from simulst.models.whisper import WhisperOptions
    from simulst.training.nar import NarTrainOptions, train_nar

    backend = build.backend("whisper", from_namespace(WhisperOptions, ns))
    print(train_nar(ns.data, ns.output, from_namespace(NarTrainOptions, ns), backend, Console(stderr=True)))
    return 0
