"""Synthetic source speech for training policy heads, from texts available offline.

Sentences come from the Debian fortune files (fortunes-de, -es, -it, -br: real sentences, many of them quotes),
from the French side of a training TSV (e.g. LibriTrans' Dumas), or from its English side; espeak-ng speaks the
non-English ones in varied voices and speeds, the embedded Piper voice the English ones (transcription).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from simulst.errors import ModelError
from simulst.eval.data import Row

FORTUNES = {"de": "de", "es": "es", "it": "it", "pt": "brasil"}
"""Language -> folder (or file) under /usr/share/games/fortunes."""
FORTUNE_ROOT = Path("/usr/share/games/fortunes")
VARIANTS = ["", "+m3", "+f2", "+m7", "+f4"]
SPEEDS = [150, 165, 175, 190]


def clean_sentence(text: str, min_words: int = 6, max_words: int = 30) -> str | None:
    """One line of prose, or None (too short or long, markup, numbers, shouting, attributions)."""
    text = re.sub(r"\s+", " ", text).strip().strip("-").strip()
    if not (min_words <= len(text.split()) <= max_words):
        return None
    if re.search(r"[<>{}\[\]|#@*_=/\\]|\d{3,}|[A-Z]{4,}|--", text) or sum(c.isalpha() for c in text) < 0.75 * len(text):
        return None
    return text


def fortune_sentences(lang: str) -> list[str]:
    """The usable sentences of a language's fortune files (Debian fortunes-de, -es, -it, -br)."""
    root = FORTUNE_ROOT / FORTUNES[lang]
    files = sorted(p for p in (root.iterdir() if root.is_dir() else [root]) if p.is_file() and p.suffix not in (".dat", ".u8"))
    if not files:
        raise ModelError(f"no fortune texts for {lang} in {root}: apt-get install fortunes-{'br' if lang == 'pt' else lang}")
    sentences = set()
    for path in files:
        for chunk in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            lines = [line for line in chunk.splitlines() if line.strip() and not line.strip().startswith("--")]
            sentence = clean_sentence(" ".join(lines))
            if sentence:
                sentences.add(sentence)
    return sorted(sentences)


def synthesize(texts: list[tuple[str, str]], output: str | Path, seed: int = 0, progress=None) -> list[Row]:
    """Speak ``(lang, text)`` pairs into ``output/ID.wav``; returns data rows (X->en translation, English
    transcription), ``reference`` empty: the frozen model's own output is the target."""
    import soundfile

    from simulst.streaming.speech import Espeak, Piper

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    piper = None
    rows = []
    for i, (lang, text) in enumerate(texts):
        path = output / f"synth-{lang}-{i:05d}.wav"
        if not path.exists():
            if lang == "en":
                piper = piper or Piper()
                speaker = piper
            else:
                speaker = Espeak(("pt-br" if lang == "pt" else lang) + rng.choice(VARIANTS), rng.choice(SPEEDS))
            audio = speaker.synthesize(text)
            soundfile.write(str(path), audio, speaker.sample_rate)
        rows.append(Row(path.stem, path, lang, "en", text, ""))
        if progress:
            progress(i + 1, len(texts), path.stem)
    return rows


def training_texts(rows: list[Row], per_language: int, seed: int = 0) -> list[tuple[str, str]]:
    """``per_language`` sentences in each of de, es, it, pt (fortunes), fr (French sides of ``rows``) and en
    (English sides of ``rows``, for transcription), drawn with ``seed``."""
    rng = random.Random(seed)
    pools = {lang: fortune_sentences(lang) for lang in FORTUNES}
    pools["fr"] = sorted({s for r in rows if r.tgt_lang == "fr" and (s := clean_sentence(r.reference))})
    pools["en"] = sorted({s.capitalize() for r in rows if r.src_lang == "en" and (s := clean_sentence(r.source.lower()))})
    texts = []
    for lang, pool in pools.items():
        texts += [(lang, text) for text in rng.sample(pool, min(per_language, len(pool)))]
    return texts
