"""A cascade session: streaming ASR (a Whisper session transcribing, with its own policy) feeding text MT.

The text side works sentence by sentence on the committed transcript. Inside the current sentence it translates
a source prefix after every ASR commit and writes the target words that are stable (``text_policy``):

- ``local-agreement``: the longest prefix on which the last two translations of the growing sentence agree;
- ``waitk``: the translation of the sentence without its last ``text_k`` source words;
- ``sentence``: nothing until the sentence is complete.

When the sentence ends (., ?, !) or the input ends, its full translation completes it.
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from dataclasses import dataclass
from typing import Literal

from simulst.clock import Clock, wall_clock
from simulst.events import Commit, End, Event
from simulst.options import Options, SessionOptions, opt
from simulst.session import Session, Wrapper

SENTENCE_END = re.compile(r"[.!?。？！]['\")\]]*$")


@dataclass(frozen=True)
class CascadeOptions(Options):
    """The text side of an ASR -> MT cascade."""

    cascade: bool = opt(False, "translate through ASR + text MT even where Whisper could translate directly (X->en)")
    mt_model: str | None = opt(None, "text MT model: a Marian hub id or directory (default: the embedded one for the direction)")
    text_policy: Literal["local-agreement", "waitk", "sentence"] = opt("local-agreement", "when target words of an unfinished sentence are written")
    text_k: int = opt(2, "waitk: source words held back from translation", min=0)


class CascadeSession(Wrapper):
    """The ASR session's rounds, the text MT's commits; the MT's compute is the wrapper's own."""

    def __init__(self, asr: Session, translator, options: CascadeOptions, clock: Clock = wall_clock) -> None:
        super().__init__(asr)
        self.translator, self.options, self.clock = translator, options, clock
        self.done_source: list[str] = []  # words of finished sentences
        self.sentence: list[str] = []  # words of the current sentence
        self.written: list[str] = []  # target words written for the current sentence
        self.history: deque[list[str]] = deque(maxlen=1)
        self.text = ""
        self._finish_ms = 0.0

    def _drain(self) -> None:
        for event in self.inner.events():
            if isinstance(event, Commit):
                self._on_source(event.text.split(), event, final=False)
            elif isinstance(event, End):
                self._on_source([], event, final=True)

    def _on_source(self, words: list[str], event: Event, final: bool) -> None:
        start = self.clock()
        out: list[str] = []
        for word in words:
            self.sentence.append(word)
            if SENTENCE_END.search(word):
                out += self._complete()
        if final and self.sentence:
            out += self._complete()
        elif self.sentence and self.options.text_policy != "sentence":
            out += self._stable()
        mt = self.clock() - start
        self.own_s += mt
        self._finish_ms = max(event.elapsed_ms, self._finish_ms) + mt * 1000
        stamp = dict(source_ms=event.source_ms, compute_ms=event.compute_ms + mt * 1000, elapsed_ms=self._finish_ms)
        if out:
            piece = " " + " ".join(out)  # pieces start with a space, as Whisper's do
            self.text += piece
            self._events.append(Commit(piece, **stamp))
        if final:
            self._events.append(End(self.text.strip(), **stamp))

    def _complete(self) -> list[str]:
        target = self.translator.translate(" ".join(self.sentence)).split()
        out = target[len(self.written) :]
        self.done_source += self.sentence
        self.sentence, self.written = [], []
        self.history.clear()
        return out

    def _stable(self) -> list[str]:
        if self.options.text_policy == "waitk":
            prefix = self.sentence[: len(self.sentence) - self.options.text_k]
            stable = self.translator.translate(" ".join(prefix)).split() if prefix else []
        else:
            current = self.translator.translate(" ".join(self.sentence)).split()
            previous = self.history[0] if self.history else []
            self.history.append(current)
            stable = []
            for a, b in zip(previous, current):
                if a != b:
                    break
                stable.append(a)
        if stable[: len(self.written)] != self.written:
            return []  # the translation changed under what is written: wait for the sentence to end
        new = stable[len(self.written) :]
        self.written += new
        return new


def cascade_session(asr_backend, asr_policy, options: SessionOptions, cascade: CascadeOptions, clock: Clock = wall_clock) -> CascadeSession:
    from simulst.build import translator
    from simulst.errors import OptionError

    if not options.src_lang:
        raise OptionError("a cascade needs the source language: give --src-lang")
    mt = translator(options.src_lang, options.tgt_lang, cascade.mt_model)
    asr_options = dataclasses.replace(options, task="transcribe", tgt_lang=options.src_lang)
    return CascadeSession(Session(asr_backend, asr_policy, asr_options, clock), mt, cascade, clock)
