"""The I/O-free streaming session: feed audio, feed end of input, take events.

Front-ends (CLI, evaluator, server, microphone) are thin loops around it::

    session = Session(backend, policy, options)
    session.feed_audio(samples)     # float32 mono at backend.sample_rate, any chunk size
    session.feed_eof()
    for event in session.events():  # Commit | Partial | End
        ...
"""

from __future__ import annotations

from collections import deque
from typing import Iterator

import numpy as np

from simulst.clock import Clock, wall_clock
from simulst.errors import AudioError, SimulstError
from simulst.events import Commit, End, Event, Partial
from simulst.models.base import Backend, Candidate, Hypothesis
from simulst.options import SessionOptions
from simulst.policies.base import Action, Policy, StateView


class Session:
    """Per-session state over a shared backend; a decision round runs every ``chunk_ms`` of new audio."""

    def __init__(self, backend: Backend, policy: Policy, options: SessionOptions = SessionOptions(), clock: Clock = wall_clock) -> None:
        if options.chunk_ms <= 0:
            raise SimulstError(f"chunk_ms must be positive, not {options.chunk_ms}")
        self.backend, self.policy, self.options, self.clock = backend, policy, options, clock
        self.stream = backend.open(options)
        self._chunks: list[np.ndarray] = []
        self._received = 0  # samples fed
        self._decided = 0  # samples covered by the last decision round
        self._step = max(1, round(options.chunk_ms * backend.sample_rate / 1000))
        self.tokens: list[int] = []
        self.words = 0
        self.text = ""
        self.compute_s = 0.0
        self.finished = False
        self._events: deque[Event] = deque()

    @property
    def source_ms(self) -> float:
        return self._decided * 1000 / self.backend.sample_rate

    def feed_audio(self, samples: np.ndarray) -> None:
        """Append mono samples in [-1, 1] at the backend's rate; runs every round they complete."""
        if self.finished:
            raise SimulstError("audio fed after end of input")
        samples = np.asarray(samples)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise AudioError(f"expected 1-D float mono samples, got shape {samples.shape} dtype {samples.dtype}")
        if not np.all(np.isfinite(samples)):
            raise AudioError("audio holds NaN or infinite samples")
        self._chunks.append(samples.astype(np.float32, copy=False))
        self._received += len(samples)
        while self._received - self._decided >= self._step:
            self._round(self._decided + self._step, final=False)

    def feed_eof(self) -> None:
        """End of input: commit the rest of the translation and emit ``End``."""
        if not self.finished:
            self._round(self._received, final=True)
            self.finished = True

    def events(self) -> Iterator[Event]:
        """Yield (and forget) the events emitted so far."""
        while self._events:
            yield self._events.popleft()

    def _audio(self, upto: int) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0][:upto] if self._chunks else np.zeros(0, np.float32)

    def _round(self, upto: int, final: bool) -> None:
        start = self.clock()
        self._decided = upto
        hyp = self.stream.begin(self._audio(upto), self.tokens, final) if upto or final else None
        written_before = len(self.tokens)
        tail: list[int] = []
        if hyp is not None:
            held = self._decide(hyp, final)
            if self.options.partials and not final:
                tail = held + self._continue(hyp, held)
        compute = self.clock() - start
        self.compute_s += compute
        stamp = dict(source_ms=self.source_ms, compute_ms=compute * 1000, elapsed_ms=self.source_ms + self.compute_s * 1000)
        if len(self.tokens) > written_before:
            stable = self.stream.detokenize(self.tokens).rstrip("\ufffd")
            if len(stable) > len(self.text):
                self._events.append(Commit(stable[len(self.text) :], **stamp))
                self.text = stable
        if tail:
            full = self.stream.detokenize(self.tokens + tail).rstrip("\ufffd")
            self._events.append(Partial(full[len(self.text) :], **stamp))
        if final:
            self._events.append(End(self.stream.detokenize(self.tokens).strip(), **stamp))

    def _decide(self, hyp: Hypothesis, final: bool) -> list[int]:
        """Write the tokens the policy allows; returns the tokens held back (an unfinished word)."""
        written: list[Candidate] = []
        words = self.words
        while len(self.tokens) + len(written) < self.options.max_tokens:
            candidate = hyp.propose()
            if candidate.is_end or repeats(self.tokens + [c.token for c in written] + [candidate.token]):
                break
            view = StateView(candidate, self.source_ms, hyp.frames, self.backend.frame_ms, words)
            if not final and self.policy.decide(view) is Action.READ:
                if self.options.whole_words and not candidate.starts_word:
                    return self._commit(written, keep=_last_word_start(written))
                break
            hyp.accept(candidate)
            written.append(candidate)
            words += candidate.starts_word or not (self.tokens or written[:-1])
        return self._commit(written, keep=len(written))

    def _commit(self, written: list[Candidate], keep: int) -> list[int]:
        for candidate in written[:keep]:
            self.words += candidate.starts_word or not self.tokens
            self.tokens.append(candidate.token)
        return [c.token for c in written[keep:]]

    def _continue(self, hyp: Hypothesis, held: list[int]) -> list[int]:
        """The provisional tail: greedy continuation to the model's end, without writing it."""
        tail: list[int] = []
        while len(self.tokens) + len(held) + len(tail) < self.options.max_tokens:
            candidate = hyp.propose()
            if candidate.is_end or repeats(self.tokens + held + tail + [candidate.token]):
                break
            hyp.accept(candidate)
            tail.append(candidate.token)
        return tail


def _last_word_start(written: list[Candidate]) -> int:
    """Index of the last token that starts a word (0 if none): what follows it is an unfinished word."""
    starts = [i for i, c in enumerate(written) if c.starts_word]
    return starts[-1] if starts else 0


def repeats(tokens: list[int], times: int = 3, longest: int = 12) -> bool:
    """Whether ``tokens`` end in an n-gram repeated ``times`` times in a row (a decoding loop)."""
    for n in range(1, longest + 1):
        if len(tokens) < n * times:
            break
        tail = tokens[-n:]
        if all(tokens[-n * (i + 1) : len(tokens) - n * i] == tail for i in range(1, times)):
            return True
    return False
