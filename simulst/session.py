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
from typing import Callable, Collection, Iterator, Protocol

import numpy as np

from simulst.clock import Clock, wall_clock
from simulst.errors import AudioError, SimulstError
from simulst.events import Commit, End, Event, Guard, Partial
from simulst.guards import Guards
from simulst.models.base import Backend, Candidate, Hypothesis
from simulst.options import SessionOptions
from simulst.policies.base import Action, Policy, StateView


MAX_BANS = 3
"""Tokens the guards may rule out at one output position before the session stops trying there."""


class SessionLike(Protocol):
    """What every front-end (CLI, evaluator, server, microphone, Ray) drives: ``Session``, the cascade's session,
    the speaking session and a session on a Ray replica all implement it."""

    finished: bool
    """End of input was fed."""
    compute_s: float
    """Compute spent so far (the injected clock's seconds)."""
    updates_ms: list[float]
    """Compute of each round that ran the model."""
    decoder_steps: int
    """Sequential decoder passes (a draft verified in one pass counts once)."""
    encode_ms: float
    """The encoder's share of the compute, where the backend reports it."""
    buffered_ms: float
    """Audio the model still reads: bounded by ``max_buffer_ms`` plus what waits for the next round."""

    def feed_audio(self, samples: np.ndarray, catch_up: bool = False) -> None: ...

    def feed_eof(self) -> None: ...

    def events(self) -> Iterator[Event]: ...

    def close(self) -> None:
        """Release what the session holds elsewhere (a place on a replica); the session is not used again."""


SessionFactory = Callable[[SessionOptions], SessionLike]
"""Makes a session for one stream's options (languages, task, chunking): what front-ends are given."""


class Wrapper:
    """A ``SessionLike`` around an ``inner`` one (the cascade's text MT, speech output): audio goes to the inner
    session, whose events ``_drain`` turns into this one's; the figures are the inner session's, with what the
    wrapper itself spends (``own_s``) added to ``compute_s``."""

    def __init__(self, inner: SessionLike) -> None:
        self.inner = inner
        self.own_s = 0.0
        self._events: deque[Event] = deque()

    def _drain(self) -> None:
        """Take the inner session's new events."""
        raise NotImplementedError

    def feed_audio(self, samples: np.ndarray, catch_up: bool = False) -> None:
        self.inner.feed_audio(samples, catch_up)
        self._drain()

    def feed_eof(self) -> None:
        self.inner.feed_eof()
        self._drain()

    def events(self) -> Iterator[Event]:
        while self._events:
            yield self._events.popleft()

    def close(self) -> None:
        self.inner.close()

    @property
    def compute_s(self) -> float:
        return self.inner.compute_s + self.own_s

    @property
    def finished(self) -> bool:
        return self.inner.finished

    @property
    def updates_ms(self) -> list[float]:
        return self.inner.updates_ms

    @property
    def decoder_steps(self) -> int:
        return self.inner.decoder_steps

    @property
    def encode_ms(self) -> float:
        return self.inner.encode_ms

    @property
    def buffered_ms(self) -> float:
        return self.inner.buffered_ms


TRIM_MARGIN_MS = 200
"""A history trim cuts this long before the attention peak of the committed word it keeps first."""


class Session:
    """Per-session state over a shared backend; a decision round runs every ``chunk_ms`` of new audio.

    History is bounded: when the buffered audio exceeds ``max_buffer_ms``, the audio before the last committed
    word (located by its cross-attention) is dropped and the committed tokens before it become the model's text
    context, so the cost of a round does not grow with the length of the stream.
    """

    def __init__(
        self, backend: Backend, policy: Policy, options: SessionOptions = SessionOptions(), clock: Clock = wall_clock, vad=None,
        voiced: Callable[[np.ndarray, int], float] | None = None,
    ) -> None:
        self.backend, self.policy, self.options, self.clock = backend, policy, options, clock
        self.voiced = voiced  # (audio, rate) -> ms of speech in it; Silero VAD by default (asked only before a restart)
        policy.bind(backend)
        self.stream = backend.open(options)
        self._buffer = np.zeros(0, np.float32)
        self._pending: list[np.ndarray] = []
        self._offset = 0  # absolute sample index of the buffer's first sample
        self._received = 0  # samples fed
        self._decided = 0  # samples covered by the last decision round
        self._rate = backend.sample_rate
        self._step = max(1, round(options.chunk_ms * self._rate / 1000))
        self.tokens: list[int] = []  # committed tokens whose audio is still buffered (the decoder's prefix)
        self._marks: list[tuple[int, bool]] = []  # per token: absolute sample it attends to most, starts a word
        self.context: list[int] = []  # committed tokens whose audio was dropped (the decoder's text context)
        self._base = ""  # text of the tokens moved to context
        self.committed = 0  # tokens committed in the whole session
        self.words = 0
        self.text = ""
        self.compute_s = 0.0
        self.updates_ms: list[float] = []  # compute of each round that ran the model
        self.decoder_steps = 0  # sequential decoder passes (a draft verified in one pass counts once)
        self.encode_ms = 0.0  # the encoder's share of the compute, where the backend reports it
        self._tail: list[int] = []  # the previous round's provisional tokens: the next round's draft
        self._finish_ms = 0.0
        self.finished = False
        self._events: deque[Event] = deque()
        self._guards: list[str] = []  # interventions of the current round
        self._banned: dict[int, set[int]] = {}  # output position (tokens committed before it) -> tokens ruled out there
        if vad is None and options.vad:
            from simulst.streaming.vad import SileroVAD

            vad = SileroVAD()
        self.vad = vad  # feed(samples) -> speech flag per window; pauses end a segment
        self._silence = 0  # trailing samples without speech
        self._heard = False  # speech since the last pause
        self._spoken = False  # the model's no-speech gate passed since the history last held no committed token

    @property
    def source_ms(self) -> float:
        return self._decided * 1000 / self._rate

    @property
    def buffered_ms(self) -> float:
        return (self._received - self._offset) * 1000 / self._rate

    def feed_audio(self, samples: np.ndarray, catch_up: bool = False) -> None:
        """Append mono samples in [-1, 1] at the backend's rate; runs every round they complete, or with
        ``catch_up`` (a server behind its live clients) one round at the last of them, so a late session costs one
        round, not one per chunk: its lag stops growing, and its output then depends on how late it was."""
        if self.finished:
            raise SimulstError("audio fed after end of input")
        samples = np.asarray(samples)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise AudioError(f"expected 1-D float mono samples, got shape {samples.shape} dtype {samples.dtype}")
        if not np.all(np.isfinite(samples)):
            raise AudioError("audio holds NaN or infinite samples")
        self._pending.append(samples.astype(np.float32, copy=False))
        self._received += len(samples)
        while self._received - self._decided >= self._step:
            steps = (self._received - self._decided) // self._step if catch_up else 1
            upto = self._decided + steps * self._step
            if self.vad is not None and self._pause(upto):
                continue
            self._round(upto, final=False)

    def feed_eof(self) -> None:
        """End of input: commit the rest of the translation and emit ``End``."""
        if not self.finished:
            self._round(self._received, final=True)
            self.finished = True

    def events(self) -> Iterator[Event]:
        """Yield (and forget) the events emitted so far."""
        while self._events:
            yield self._events.popleft()

    def close(self) -> None:
        """Nothing to release: the session's state is its own."""

    def _pause(self, upto: int) -> bool:
        """VAD: track trailing silence; at a pause after speech, write out the segment. True when the round is done."""
        new = self._audio(upto)[self._decided - self._offset :]
        flags = self.vad.feed(new)
        window = len(new) // max(len(flags), 1) if flags else 0
        for speech in flags:
            self._silence = 0 if speech else self._silence + window
            self._heard |= speech
        if self._silence * 1000 < self.options.vad_pause_ms * self._rate:
            return False
        if self._heard:  # end of a segment: everything heard is written, then the history restarts
            self._round(upto, final=False, flush=True)
            self._heard = False
        else:  # silence only: nothing to decode, keep no audio
            self._decided = upto
        self._drop(len(self.tokens), upto)
        return True

    def _audio(self, upto: int) -> np.ndarray:
        if self._pending:
            self._buffer = np.concatenate([self._buffer, *self._pending])
            self._pending = []
        return self._buffer[: upto - self._offset]

    def _round(self, upto: int, final: bool, flush: bool = False) -> None:
        """One decision round over the audio up to ``upto``; ``final`` (end of input) and ``flush`` (a pause)
        write the model's continuation without asking the policy."""
        start = self.clock()
        self._decided = upto
        audio = self._audio(upto)
        closing = final or flush
        hyp = self.stream.begin(audio, self.tokens, closing, self.context) if len(audio) else None
        before = self.committed
        tail: list[int] = []
        revising, observes = self.policy.revises, self.policy.observes
        if hyp is not None and self.options.draft:
            hyp.draft(self._tail)
        # policies that show or read the model's text every round see none where it hears no speech
        heard = hyp is not None and (not (revising or observes or self.options.partials) or self._hears(hyp))
        if heard:
            forced = 0 if closing else self._forced(upto)
            if revising:
                tail = self._retranslate(hyp, closing, forced)
            else:
                held = self._decide(hyp, closing, forced)
                if (self.options.partials or observes) and not closing:
                    tail = held + [c.token for c in self._continue(hyp, held)]
            if observes and not closing:
                self.policy.observe(self.tokens[len(self.tokens) - (self.committed - before) :], tail)
            if closing and self.committed == before and self._restart(upto):
                self._spend(hyp)
                hyp = self.stream.begin(self._audio(upto), self.tokens, closing, self.context)
                if hyp is not None and revising:
                    self._retranslate(hyp, closing, 0)
                elif hyp is not None:
                    self._decide(hyp, closing)
        if hyp is not None:
            self._spend(hyp)
        self._tail = tail
        if not closing:
            self._trim(upto, hyp if heard else None)
        compute = self.clock() - start
        self.compute_s += compute
        if heard:
            self.updates_ms.append(compute * 1000)
        # live-stream time: a round starts once its audio has arrived and the previous round is done
        self._finish_ms = max(self.source_ms, self._finish_ms) + compute * 1000
        stamp = dict(source_ms=self.source_ms, compute_ms=compute * 1000, elapsed_ms=self._finish_ms)
        if self.committed > before:
            stable = (self._base + self.stream.detokenize(self.tokens)).rstrip("\ufffd")
            if len(stable) > len(self.text):
                self._events.append(Commit(stable[len(self.text) :], **stamp))
                self.text = stable
        self._events.extend(Guard(reason, **stamp) for reason in self._guards)
        self._guards = []
        if (tail and self.options.partials) or (revising and heard and not closing):
            full = (self._base + self.stream.detokenize(self.tokens + tail)).rstrip("\ufffd")
            self._events.append(Partial(full[len(self.text) :], **stamp))
        if final:
            self._events.append(End((self._base + self.stream.detokenize(self.tokens)).strip(), **stamp))

    def _spend(self, hyp: Hypothesis) -> None:
        self.decoder_steps += hyp.steps
        self.encode_ms += hyp.encode_ms

    def _restart(self, upto: int) -> bool:
        """Whisper may end its text right after a committed prefix that ends a sentence although speech follows.
        When the round wrote nothing (no guard held it back, no token is ruled out there) and a voice detector
        hears ``restart_ms`` or more of speech after the prefix's furthest attention peak, the text becomes context
        and the audio after it is to be decoded again. True if so."""
        need, last = self.options.restart_ms, self._written_to()
        if not need or last is None or self._guards or self.committed in self._banned:
            return False
        if (upto - last) * 1000 < need * self._rate:
            return False
        if self.voiced is None:
            from simulst.streaming.vad import voiced_ms

            self.voiced = voiced_ms
        if self.voiced(self._audio(upto)[last - self._offset :], self._rate) < need:
            return False
        self._guards.append("restart")
        self._drop(len(self.tokens), last)
        return True

    def _retranslate(self, hyp: Hypothesis, closing: bool, forced: int) -> list[int]:
        """Re-translation: the model's whole continuation of the committed text; the policy (a stabiliser) says
        how much of it is committed, the rest is shown as provisional. Returns the provisional tokens."""
        hypothesis = self._continue(hyp, [])
        count = len(hypothesis)
        if not closing:
            count = min(count, max(0, self.policy.stable([c.token for c in hypothesis])))
            while count < len(hypothesis) and hypothesis[count].aligned_frame < forced:
                count += 1
            if self.options.whole_words and count < len(hypothesis) and not hypothesis[count].starts_word:
                count = _last_word_start(hypothesis[:count])
        return self._commit(hypothesis, hyp.frames, count)

    def _decide(self, hyp: Hypothesis, final: bool, forced: int = 0) -> list[int]:
        """Write the tokens the policy allows, and those attending frames before ``forced`` (audio about to be
        dropped) whatever the policy says; returns the tokens held back (an unfinished word)."""
        written: list[Candidate] = []
        words = self.words
        guard = self._guard()
        while True:
            if len(written) >= self.options.max_tokens:
                self._guards.append("max_tokens")
                break
            candidate = hyp.propose(self._banned.get(self.committed + len(written), ()))
            if candidate.is_end:
                break
            verdict = guard.check([c.token for c in written] + [candidate.token])
            if verdict is not None:
                self._guards.append(verdict.reason)
                keep = len(written) + 1 - verdict.drop
                if self._ban(verdict, self.committed + keep, (written + [candidate])[keep].token) and verdict.drop == 1:
                    continue  # the model is asked again at once for another token
                if self.options.whole_words and not (written + [candidate])[keep].starts_word:
                    keep = _last_word_start(written[:keep])
                return self._commit(written, hyp.frames, keep)
            view = StateView(candidate, self.source_ms, hyp.frames, self.backend.frame_ms, words, len(written), len(self.tokens) + len(written))
            if not final and candidate.aligned_frame >= forced and self.policy.decide(view) is Action.READ:
                if self.options.whole_words and not candidate.starts_word:
                    return self._commit(written, hyp.frames, keep=_last_word_start(written))
                break
            if not written and not self._hears(hyp):
                break
            hyp.accept(candidate)
            written.append(candidate)
            words += candidate.starts_word or not (self.tokens or self.context or written[:-1])
        return self._commit(written, hyp.frames, keep=len(written))

    def _hears(self, hyp: Hypothesis) -> bool:
        """The no-speech gate, asked when a first word would be written (or shown) while no committed token is
        buffered; once it passes, not again until the history holds none."""
        self._spoken = self._spoken or bool(self.tokens) or hyp.speech()
        return self._spoken

    def _ban(self, verdict, position: int, token: int) -> bool:
        """After a repetition, rule out the token that started it at its output position (at most a few there),
        so that the model offers another continuation instead of the same one every round. True if banned."""
        if verdict.reason == "rate":
            return False
        ruled = self._banned.setdefault(position, set())
        if len(ruled) >= MAX_BANS:
            return False
        ruled.add(token)
        return True

    def _guard(self) -> Guards:
        seconds = (self._decided - self._offset) / self._rate
        return Guards(self.context + self.tokens, len(self.tokens), seconds, self.options, self.stream.detokenize)

    def _commit(self, written: list[Candidate], frames: int, keep: int) -> list[int]:
        per_frame = self.backend.frame_ms * self._rate / 1000
        for candidate in written[:keep]:
            self.words += candidate.starts_word or not (self.tokens or self.context)
            self.tokens.append(candidate.token)
            self.committed += 1
            frame = min(candidate.aligned_frame, max(frames - 1, 0))
            self._marks.append((self._offset + int(frame * per_frame), candidate.starts_word))
        self._banned = {p: tokens for p, tokens in self._banned.items() if p >= self.committed}
        return [c.token for c in written[keep:]]

    def _forced(self, upto: int) -> int:
        """Over the buffer limit, the frames of the audio that the trim after this round will drop: the model's
        output for them is written whatever the policy says (it would be lost otherwise)."""
        limit = self.options.max_buffer_ms * self._rate // 1000
        if upto - self._offset <= limit:
            return 0
        return int((upto - limit // 2 - self._offset) * 1000 / self._rate / self.backend.frame_ms)

    def _trim(self, upto: int, hyp: Hypothesis | None) -> None:
        """Bound the history: once the buffer is over its limit, drop the audio before a committed word, keeping
        about half the limit (the model keeps some of what it heard, and the tokens of it as its prefix).

        With no committed word to cut at (the model's output for the old half, written by ``_forced``, was
        empty), the old half is dropped all the same: a ``guard`` event says so when the model heard speech
        (``hyp``: the round's hypothesis, None when the model did not run)."""
        limit = self.options.max_buffer_ms * self._rate // 1000
        if upto - self._offset <= limit:
            return
        margin = self._rate * TRIM_MARGIN_MS // 1000
        half = upto - limit // 2
        cuts = [(i, max(self._offset, self._marks[i][0] - margin)) for i in range(1, len(self.tokens)) if self._marks[i][1]]
        cuts = [(i, cut) for i, cut in cuts if upto - cut <= limit]
        # the first word start in the last half, else the last one; with none, all text goes to context and the audio
        # after its last token is kept (at most the limit, at least the last half)
        written = self._written_to()
        after = upto if written is None else written
        keep, cut = next(((i, cut) for i, cut in cuts if cut >= half), cuts[-1] if cuts else (len(self.tokens), min(half, max(after, upto - limit))))
        if hyp is not None and (not self.tokens or cut > after) and self._hears(hyp):
            self._guards.append("overflow")
        self._drop(keep, cut)

    def _written_to(self) -> int | None:
        """Where the buffered committed text ends: its furthest attention peak plus the trim margin (an absolute
        sample; None with no committed token buffered)."""
        if not self._marks:
            return None
        return max(mark for mark, _ in self._marks) + self._rate * TRIM_MARGIN_MS // 1000

    def _drop(self, tokens: int, cut: int) -> None:
        """Move the first ``tokens`` committed tokens into the text context and drop the audio before ``cut``."""
        self._base += self.stream.detokenize(self.tokens[:tokens])
        self.context = (self.context + self.tokens[:tokens])[-self.options.context_tokens :]
        self.tokens, self._marks = self.tokens[tokens:], self._marks[tokens:]
        self._spoken = self._spoken and bool(self.tokens)
        self._buffer = self._buffer[cut - self._offset :]
        self._offset = cut

    def _continue(self, hyp: Hypothesis, held: list[int]) -> list[Candidate]:
        """Greedy continuation after ``held`` to the model's end (or a guard), without writing it."""
        start = self.committed + len(held)
        return continuation(hyp, self._guard(), self.options.max_tokens, held, lambda i: self._banned.get(start + i, ()))


def continuation(
    hyp: Hypothesis, guard: Guards, limit: int, held: list[int] = (), banned: Callable[[int], Collection[int]] = lambda i: ()
) -> list[Candidate]:
    """The model's greedy continuation after ``held`` (tokens of this round already accepted), accepted into
    ``hyp``, until its end, a guard's verdict or ``limit`` tokens in all; ``banned(i)``: the tokens ruled out at
    the ``i``-th position after ``held``."""
    tail: list[Candidate] = []
    while len(held) + len(tail) < limit:
        candidate = hyp.propose(banned(len(tail)))
        if candidate.is_end or guard.check(list(held) + [c.token for c in tail] + [candidate.token]):
            break
        hyp.accept(candidate)
        tail.append(candidate)
    return tail


def _last_word_start(written: list[Candidate]) -> int:
    """Index of the last token that starts a word (0 if none): what follows it is an unfinished word."""
    starts = [i for i, c in enumerate(written) if c.starts_word]
    return starts[-1] if starts else 0
