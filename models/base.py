"""What a model backend offers a session: incremental greedy proposals with their cross-attention.

A backend (shared, holds the weights) opens one ``Stream`` per session (holds per-session state such as the
detected language). For each decision round the stream encodes the buffered audio and returns a
``Hypothesis`` that proposes the next target token given the committed prefix; the policy decides whether it
is written (``accept``) or whether to wait for more audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Collection, Protocol, Sequence

import numpy as np

from simulst.options import SessionOptions


@dataclass(frozen=True)
class Candidate:
    """The model's next target token, as a policy sees it."""

    token: int
    starts_word: bool
    is_end: bool
    attention: np.ndarray
    """Cross-attention of this token over encoder frames (the policy's heads, averaged); sums to about 1."""
    logprob: float = 0.0
    entropy: float = 0.0
    """Entropy (nats) of the model's distribution over the next token."""
    hidden: np.ndarray | None = None
    """The decoder's last hidden state at this position (what a learned policy reads); None if the backend has none."""
    alignment: np.ndarray | None = None
    """Per-frame alignment score (higher: the token's source is there), with the frames that every token attends
    (attention sinks) normalized away; None where the backend gives only ``attention``."""

    @property
    def aligned_frame(self) -> int:
        """The frame this token is about: the peak of ``alignment``, else of ``attention``."""
        return int(np.argmax(self.attention if self.alignment is None else self.alignment))


def proposal(logprobs, token: int, word_start: np.ndarray, ends: Collection[int], attention: np.ndarray, hidden, alignment: np.ndarray | None) -> Candidate:
    """The candidate ``token`` chosen from one position's ``logprobs`` (a torch vector on the CPU): its word start,
    end, log-probability and the distribution's entropy; ``hidden`` is the decoder state there (a torch vector)."""
    import torch

    entropy = -(logprobs.exp() * torch.nan_to_num(logprobs, neginf=0.0)).sum()
    return Candidate(
        token=token, starts_word=bool(word_start[token]), is_end=token in ends, attention=attention,
        logprob=float(logprobs[token]), entropy=float(entropy), hidden=hidden.float().cpu().numpy().copy(), alignment=alignment,
    )


def unbanned(candidate: Candidate, logprobs, banned: Collection[int], word_start: np.ndarray, ends: Collection[int]) -> Candidate:
    """``candidate``, or where its token is ``banned``, the best other token of the same distribution (``logprobs``,
    a torch vector) with the same attention and state: a guard's ruled-out token costs no decoder pass."""
    import dataclasses

    if candidate.token not in banned:
        return candidate
    logprobs = logprobs.clone()
    logprobs[list(banned)] = float("-inf")
    token = int(logprobs.argmax())
    return dataclasses.replace(candidate, token=token, starts_word=bool(word_start[token]), is_end=token in ends, logprob=float(logprobs[token]))


WORD_NATS = 1.0
"""A glossary term's word (its first, or a later word of a multi-word term) is written where the model gives its
first token at most this much less than its best."""
PIECE_NATS = 5.0
"""Inside a term's word once begun, its next piece is written where the model gives it at most this much less."""


def glossary_choice(logprobs, history: Sequence[int], terms: Sequence[Sequence[int]], word_start: np.ndarray) -> int | None:
    """The token a glossary term writes in place of the model's best (``logprobs``, a torch vector, after the
    output ``history``), or None. Each term continues from its longest begun prefix at the end of the history;
    the longest continuation the model finds likely enough (``WORD_NATS``, ``PIECE_NATS``) wins."""
    best, choice, longest = float(logprobs.max()), None, -1
    for term in terms:
        begun = next(k for k in range(len(term) - 1, -1, -1) if k <= len(history) and list(history[len(history) - k :]) == list(term[:k]))
        token = term[begun]
        margin = WORD_NATS if word_start[token] else PIECE_NATS
        if begun > longest and float(logprobs[token]) >= best - margin:
            choice, longest = token, begun
    return choice


class Hypothesis:
    """The model's proposals over one round's audio, continuing the committed prefix. A backend's hypothesis
    implements ``propose`` and ``accept``; the rest has neutral defaults that a backend overrides where it can."""

    frames: int
    """Encoder frames that hold buffered audio (attention may cover more, e.g. padding)."""
    steps: int = 0
    """Sequential decoder passes run so far (a draft verified in one pass counts once)."""
    encode_ms: float = 0.0
    """The encoder's share of the round's compute, where the backend measures it."""

    def propose(self, banned: Collection[int] = ()) -> Candidate:
        """The model's best next token that is not in ``banned`` (the guards rule out tokens that repeat)."""
        raise NotImplementedError

    def accept(self, candidate: Candidate) -> None:
        """Write ``candidate``: the next proposal continues after it."""
        raise NotImplementedError

    def draft(self, tokens: Sequence[int]) -> None:
        """A guess of the coming tokens (the previous round's provisional tail), to verify in one parallel pass
        before the first ``accept``; the proposals stay those of greedy decoding. Ignored by default."""

    def speech(self) -> bool:
        """Whether the model hears speech in the audio: asked once the policy would write a segment's first
        word (a model that hears none writes its usual hallucination on leading noise). True by default."""
        return True


class Stream(Protocol):
    def begin(self, audio: np.ndarray, prefix: Sequence[int], final: bool, context: Sequence[int] = ()) -> Hypothesis | None:
        """A hypothesis over ``audio`` continuing ``prefix`` (committed tokens of this audio), after ``context``
        (committed tokens of earlier, dropped audio); None when more audio is needed first."""

    def detokenize(self, tokens: Sequence[int]) -> str: ...


class Backend:
    """Shared weights (one per process, used by every session); ``open`` gives each session its ``Stream``.
    A backend is registered under the ``simulst.backends`` entry point group."""

    Options: ClassVar[type]
    """Its options dataclass (CLI flags and the Python API are made from it)."""
    prefix: ClassVar[str] = ""
    """Its options' CLI flags are ``--{prefix}-*`` (the default backend's have none)."""
    model_types: ClassVar[tuple[str, ...]] = ()
    """The transformers ``model_type``s of the model directories it loads: ``--model DIR`` of one goes to it."""
    sample_rate: int
    frame_ms: float
    """Source milliseconds per encoder frame."""
    identity: str
    """Which weights: a learned policy's head is refused by a backend other than the one it was trained for."""
    numerics: str = ""
    """What beside the weights decides its numbers (device, float types, quantization, runtime): the training
    recipes key their caches of its outputs by it and a trained head's card records it."""

    def open(self, options: SessionOptions) -> Stream:
        """A per-session stream; raises OptionError for a language or task the model cannot do."""
        raise NotImplementedError

    def knows(self, options: SessionOptions) -> bool:
        """Whether ``open`` takes these options (a training recipe leaves out rows in languages the model lacks)."""
        from simulst.errors import OptionError

        try:
            self.open(options)
        except OptionError:
            return False
        return True

    def translates(self, options: SessionOptions) -> bool:
        """Whether the model writes ``options.tgt_lang`` itself (by default it does, and ``open`` refuses what it
        cannot do); where it does not, a cascade translates its transcript (ASR, then text MT)."""
        return True

    @classmethod
    def on_cores(cls, options, threads: int, workers: int):
        """``options`` for a backend on a share of the cores (a Ray actor, a server's model thread): ``threads``
        CPU threads where the options leave them unset (``threads`` 0: the backend's default), and at least
        ``workers`` encoder passes at once where the backend runs several. Unchanged by default."""
        return options

    def frames(self, samples: int) -> int:
        """Encoder frames that hold ``samples`` of audio."""
        return -(-samples // round(self.frame_ms * self.sample_rate / 1000))
