"""Speech2Text (fairseq's S2T in transformers; sentencepiece vocabularies): the MuST-C models SimulST papers
report on. A bilingual model (``facebook/s2t-small-mustc-en-de-st``) translates into its one language; a
multilingual one asks for the target with ``<lang:de>``. A directory saved by transformers works anywhere."""

from __future__ import annotations

from dataclasses import dataclass

from simulst.models.seq2seq import Seq2SeqBackend, Seq2SeqOptions
from simulst.options import opt


@dataclass(frozen=True)
class Speech2TextOptions(Seq2SeqOptions):
    """Speech2Text (--s2t-model DIR, or --model DIR: a Speech2Text directory is routed here)."""

    model: str = opt("facebook/s2t-small-mustc-en-de-st", "a Speech2Text directory saved by transformers, or its hub id")


class Speech2TextBackend(Seq2SeqBackend):
    Options = Speech2TextOptions
    prefix = "s2t"
    model_types = ("speech_to_text",)
