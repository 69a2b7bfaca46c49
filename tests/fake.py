"""A scripted fake model: canned words, each attending to the source time it was said at."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from simulst.models import batching
from simulst.models.base import Backend, Candidate, Hypothesis
from simulst.options import SessionOptions


TIME_CODE = 1e6
"""Audio made by ``timecoded(n)`` says where it starts: sample value x is sample index x * TIME_CODE."""


def timecoded(samples: int) -> np.ndarray:
    return (np.arange(samples) / TIME_CODE).astype(np.float32)


@dataclass
class FakeBackend(Backend):
    """``script`` is ``[(word, aligned_ms), ...]``; a word not yet heard attends to the last frame.

    One sample per millisecond and 10 ms frames keep the arithmetic of the tests readable. A word written as
    ``"+piece"`` continues the previous word (a sub-word token).
    """

    script: Sequence[tuple[str, float]]
    guess_unheard: bool = False
    """Propose a word not heard yet as a fresh guess each round (a token that never agrees across rounds)."""
    stop_unheard: bool = False
    """End the hypothesis at the first word not heard yet (instead of guessing on)."""
    tail_attention: float = 0.0
    """Share of every token's attention put on the last frame (the rest on its aligned frame)."""
    loop_after: int | None = None
    """From this token on, the last two words repeat forever (a decoding loop)."""
    ends_after: int | None = None
    """A hypothesis whose committed prefix ends with this script index ends its text at once (Whisper after a
    prefix that ends a sentence); with that word in its text context only, it goes on."""
    speech_from_ms: float = 0.0
    """The no-speech gate hears speech only in audio that reaches this source time."""
    batched: bool = False
    """Send proposals through models/batching.py (``batches`` records the size of each batch)."""
    sample_rate: int = 1000
    frame_ms: float = 10.0
    identity: str = "fake"
    batches: list = field(default_factory=list)
    opened: list = field(default_factory=list)
    begun: list = field(default_factory=list)
    """``(samples, prefix tokens, context tokens)`` of every round."""
    gated: list = field(default_factory=list)
    """The source ms (end of the round's audio) of every ask of the no-speech gate."""

    def open(self, options: SessionOptions) -> "FakeStream":
        self.opened.append(options)
        return FakeStream(self)

    def translates(self, options: SessionOptions) -> bool:
        """Into English only, as Whisper: other targets go through a cascade."""
        return options.tgt_lang == "en"

    def propose_all(self, calls: list) -> list[Candidate]:
        """Several hypotheses' proposals as one batch: ``(hypothesis, banned)`` pairs."""
        self.batches.append(len(calls))
        return [hyp.scripted(banned) for hyp, banned in calls]


class FakeStream:
    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend

    def begin(self, audio: np.ndarray, prefix: Sequence[int], final: bool, context: Sequence[int] = ()) -> "FakeHypothesis | None":
        self.backend.begun.append((len(audio), len(prefix), len(context)))
        if not len(audio):
            return None
        offset_ms = round(float(audio[0]) * TIME_CODE) * 1000 / self.backend.sample_rate
        ends = bool(prefix) and self.backend.ends_after == len(context) + len(prefix) - 1
        return FakeHypothesis(self.backend, len(audio), list(context) + list(prefix), offset_ms, ends)

    def detokenize(self, tokens: Sequence[int]) -> str:
        text = ""
        for t in tokens:
            word = self.backend.script[t % GUESS][0] if t < GUESS else "~" + self.backend.script[t % GUESS][0]
            text += word[1:] if word.startswith("+") else " " + word
        return text


class FakeHypothesis(Hypothesis):
    def __init__(self, backend: FakeBackend, samples: int, prefix: list[int], offset_ms: float = 0.0, ends: bool = False) -> None:
        self.backend, self.offset_ms, self.ends = backend, offset_ms, ends
        self.frames = int(samples * 1000 / backend.sample_rate / backend.frame_ms)
        self.next = len(prefix)
        self.steps = 0

    def propose(self, banned=()) -> Candidate:
        if self.backend.batched:
            return batching.run(self.backend.propose_all, (self, banned))
        return self.scripted(banned)

    def scripted(self, banned=()) -> Candidate:
        """The scripted word; a banned one leaves the fake model with nothing else to say (end)."""
        script = self.backend.script
        loop = self.backend.loop_after
        index = self.next if loop is None or self.next < loop else loop - 2 + (self.next - loop) % 2
        if index >= len(script) or self.ends:
            return Candidate(token=-1, starts_word=False, is_end=True, attention=np.ones(self.frames) / self.frames)
        word, aligned_ms = script[index]
        if self.backend.stop_unheard and aligned_ms >= self.offset_ms + self.frames * self.backend.frame_ms:
            return Candidate(token=-1, starts_word=False, is_end=True, attention=np.ones(self.frames) / self.frames)
        frame = max(0, min(int((aligned_ms - self.offset_ms) / self.backend.frame_ms), self.frames - 1))
        attention = np.zeros(self.frames)
        attention[frame] += 1.0 - self.backend.tail_attention
        attention[-1] += self.backend.tail_attention
        token = next(i for i, (w, _) in enumerate(script) if w == word)  # the same word is the same token
        if self.backend.guess_unheard and aligned_ms >= self.offset_ms + self.frames * self.backend.frame_ms:
            token = GUESS * self.frames + index
        if token in banned:
            return Candidate(token=-1, starts_word=False, is_end=True, attention=np.ones(self.frames) / self.frames)
        return Candidate(token=token, starts_word=not word.startswith("+"), is_end=False, attention=attention)

    def accept(self, candidate: Candidate) -> None:
        self.next += 1

    def speech(self) -> bool:
        end_ms = self.offset_ms + self.frames * self.backend.frame_ms
        self.backend.gated.append(end_ms)
        return end_ms >= self.backend.speech_from_ms


GUESS = 1000
"""Guessed tokens are ``GUESS * frames + index``: another id every round."""


class RoundsBackend(Backend):
    """A scripted model whose round ``r`` hypothesis is ``script[r]`` (words), continuing whatever is committed."""

    frame_ms, identity = 10.0, "rounds"

    def __init__(self, script, sample_rate: int = 1000):
        self.script, self.rounds, self.ids, self.sample_rate = script, 0, {}, sample_rate

    def open(self, options):
        return self

    def begin(self, audio, prefix, final, context=()):
        words = self.script[min(self.rounds, len(self.script) - 1)].split()
        self.rounds += 1
        tokens = [self.ids.setdefault(w, len(self.ids)) for w in words]
        frames = int(len(audio) * 1000 / self.sample_rate / self.frame_ms)
        return ScriptedHypothesis(tokens[len(prefix) :], frames)

    def detokenize(self, tokens):
        names = {i: w for w, i in self.ids.items()}
        return "".join(" " + names[t] for t in tokens)


class ScriptedHypothesis(Hypothesis):
    def __init__(self, tokens, frames):
        self.tokens, self.frames = tokens, frames

    def propose(self, banned=()):
        attention = np.ones(max(self.frames, 1))
        if not self.tokens:
            return Candidate(token=-1, starts_word=False, is_end=True, attention=attention)
        return Candidate(token=self.tokens[0], starts_word=True, is_end=False, attention=attention)

    def accept(self, candidate):
        self.tokens = self.tokens[1:]
