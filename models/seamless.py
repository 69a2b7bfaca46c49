"""SeamlessM4T (v2 and v1) speech-to-text: any of its ~100 source languages into any of its 36 text languages,
so English->German, ->Chinese, ->Japanese directly (no cascade). Hub id for users with a hub:
``facebook/seamless-m4t-v2-large``; a directory saved by transformers works anywhere."""

from __future__ import annotations

from dataclasses import dataclass

from simulst.models.seq2seq import Seq2SeqBackend, Seq2SeqOptions
from simulst.options import opt

CODES = {
    "ar": "arb", "bg": "bul", "bn": "ben", "ca": "cat", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu", "el": "ell",
    "en": "eng", "es": "spa", "et": "est", "fa": "pes", "fi": "fin", "fr": "fra", "hi": "hin", "hu": "hun", "id": "ind",
    "it": "ita", "ja": "jpn", "ko": "kor", "lt": "lit", "lv": "lvs", "mt": "mlt", "nl": "nld", "pl": "pol", "pt": "por",
    "ro": "ron", "ru": "rus", "sk": "slk", "sv": "swe", "sw": "swh", "te": "tel", "th": "tha", "tl": "tgl", "tr": "tur",
    "uk": "ukr", "ur": "urd", "uz": "uzn", "vi": "vie", "zh": "cmn",
}
"""ISO 639-1 codes to SeamlessM4T's (ISO 639-3, ``cmn`` for Mandarin); three-letter codes pass as they are."""


@dataclass(frozen=True)
class SeamlessOptions(Seq2SeqOptions):
    """SeamlessM4T speech-to-text (--seamless-model DIR, or --model DIR: a SeamlessM4T directory is routed here)."""

    model: str = opt("facebook/seamless-m4t-v2-large", "a SeamlessM4T (v2) directory saved by transformers, or its hub id")


class SeamlessBackend(Seq2SeqBackend):
    Options = SeamlessOptions
    prefix = "seamless"
    model_types = ("seamless_m4t_v2", "seamless_m4t")

    def code(self, lang: str) -> str:
        return CODES.get(lang, lang)
