"""Quality metrics: corpus BLEU and chrF (sacrebleu), WER for transcription."""

from __future__ import annotations

import re
from typing import Sequence

TOKENIZERS = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab", "th": "char"}
"""sacrebleu's tokenizer per target language; 13a for every other language."""


def tokenizer_for(lang: str | None) -> str:
    return TOKENIZERS.get((lang or "").split("-")[0], "13a")


def bleu_metric(lang: str | None = None, **options):
    """sacrebleu's BLEU with the tokenizer of ``lang`` (characters where its mecab tokenizer is not installed)."""
    from sacrebleu.metrics import BLEU

    try:
        return BLEU(tokenize=tokenizer_for(lang), **options)
    except (ImportError, RuntimeError):
        return BLEU(tokenize="char", **options)


def bleu(hypotheses: Sequence[str], references: Sequence[str], lang: str | None = None) -> float:
    return bleu_metric(lang).corpus_score(list(hypotheses), [list(references)]).score


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    import sacrebleu

    return sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def normalize(text: str) -> str:
    """Lower case, punctuation removed, single spaces (how transcripts are compared)."""
    return " ".join(_words(text))


def edit_distance(hypothesis: Sequence, reference: Sequence) -> int:
    """Insertions, deletions and substitutions that turn ``hypothesis`` into ``reference``."""
    row = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hypothesis)]


def word_errors(hypothesis: str, reference: str) -> tuple[int, int]:
    """The word errors of ``hypothesis`` and the words of ``reference``, lower-cased and without punctuation."""
    words = _words(reference)
    return edit_distance(_words(hypothesis), words), len(words)


def wer(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus word error rate (%) after lower-casing and removing punctuation."""
    counts = [word_errors(h, r) for h, r in zip(hypotheses, references)]
    return 100.0 * sum(errors for errors, _ in counts) / max(sum(words for _, words in counts), 1)
