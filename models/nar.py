"""A non-autoregressive backend: a CTC head over the frozen Whisper encoder, one parallel pass per update.

The head (a few transformer layers and a projection to characters) reads the Whisper encoder's states and gives
per-frame character log-probabilities; the hypothesis is their best path, collapsed (repeats merged, blanks
dropped). No decoder steps: the cost of an update is the encoder pass plus one small pass, whatever the length of
the output. The committed prefix is kept by aligning it to the frames first (best CTC path through the prefix,
then the best symbol per remaining frame), so the hypothesis continues what was committed. Each character is
placed at the frame CTC emits it, which stands for a decoder's cross-attention in the policies and the session.

Trained by ``simulst train-nar`` (``simulst.training.nar``); heads shipped with simulst live in ``models/heads``,
a head is named by its shipped name or its card's path (``simulst.cards``).
"""

from __future__ import annotations

import dataclasses
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Literal, Sequence

import numpy as np

from simulst.errors import OptionError
from simulst.models.base import Backend, Candidate, Hypothesis
from simulst.models.device import DEVICE_HELP, DTYPE_HELP, Device, Dtype
from simulst.options import Options, SessionOptions, opt

BLANK = 0
VOCAB = ["<blank>", *" abcdefghijklmnopqrstuvwxyz0123456789'.,?!-"]
SPACE = VOCAB.index(" ")
SHIPPED = Path(__file__).parent / "heads"
FORMAT = "ctc-chars-v1"


def encode_text(text: str) -> list[int]:
    """Character ids of ``text``: lower case, accents stripped, ``;:`` as commas, other symbols dropped."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = text.replace(";", ",").replace(":", ",").replace("\u2019", "'")
    kept = "".join(c if c in VOCAB[1:] else " " if c.isspace() else "" for c in text if not unicodedata.combining(c))
    return [VOCAB.index(c) for c in " ".join(kept.split())]


def decode_ids(ids: Sequence[int]) -> str:
    return "".join(VOCAB[i] for i in ids if i != BLANK)


def collapse(best: Sequence[int], previous: int = BLANK) -> list[tuple[int, int]]:
    """``(symbol, frame)`` of a frame-wise best path: repeats merged, blanks dropped (``previous``: the symbol
    just before the first frame)."""
    out = []
    for frame, symbol in enumerate(best):
        if symbol != BLANK and symbol != previous:
            out.append((int(symbol), frame))
        previous = symbol
    return out


def continue_prefix(logprobs: np.ndarray, prefix: Sequence[int]) -> list[tuple[int, int]]:
    """The best path that spells ``prefix`` first, then the best symbol per frame: the ``(symbol, frame)``
    continuation after the prefix (frames counted from 0). Viterbi over the prefix's CTC states, whose end frame
    is chosen with the best-path score of the frames after it."""
    best = logprobs.argmax(-1)
    if not len(prefix):
        return collapse(best)
    frames, states = len(logprobs), 2 * len(prefix) + 1
    labels = np.full(states, BLANK)
    labels[1::2] = prefix
    skip = np.zeros(states, bool)  # state s may be entered from s-2: a symbol after a blank, unlike the one before
    skip[3::2] = np.asarray(prefix[1:]) != np.asarray(prefix[:-1])
    score = np.full(states, -np.inf)
    score[:2] = logprobs[0, labels[:2]]
    ends = np.full(frames, -np.inf)  # best score of the whole prefix ending at each frame
    ended_on = np.zeros(frames, int)  # ... ending in its last symbol (1) or the blank after it (0)
    for t in range(frames):
        if t:
            stay, step = score, np.concatenate([[-np.inf], score[:-1]])
            jump = np.where(skip, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
            score = np.maximum(np.maximum(stay, step), jump) + logprobs[t, labels]
        ends[t], ended_on[t] = max(score[-1], score[-2]), int(score[-2] >= score[-1])
    after = np.concatenate([np.cumsum(logprobs.max(-1)[::-1])[::-1][1:], [0.0]])
    t = int(np.argmax(ends + after))
    if not np.isfinite(ends[t]):
        return []
    return [(s, f + t + 1) for s, f in collapse(best[t + 1 :], prefix[-1] if ended_on[t] else BLANK)]


def head_net(dim: int, width: int = 192, layers: int = 2, stack: int = 2):
    """The CTC head: ``stack`` encoder frames concatenated into one step (Whisper's 20 ms frames, 40 ms steps:
    enough for speech's 10-20 characters a second, at half the cost), a projection, ``layers`` transformer
    layers, per-step character log-probabilities."""
    import torch

    class CtcHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stack = stack
            self.project = torch.nn.Linear(dim * stack, width)
            layer = torch.nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.1, batch_first=True, norm_first=True)
            self.layers = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.out = torch.nn.Linear(width, len(VOCAB))

        def forward(self, states, padding=None):
            """``states``: batch x frames x dim; ``padding``: batch x frames, True at padding. Returns batch x
            ceil(frames / stack) x symbols."""
            batch, frames, _ = states.shape
            extra = -frames % self.stack
            states = torch.nn.functional.pad(states, (0, 0, 0, extra)).reshape(batch, (frames + extra) // self.stack, -1)
            if padding is not None:
                padding = torch.nn.functional.pad(padding, (0, extra), value=True)[:, :: self.stack]
            return self.out(self.layers(self.project(states), src_key_padding_mask=padding)).log_softmax(-1)

    return CtcHead()


def load_head(name: str):
    """``(net, card)`` of a head; refuses a card of another format."""
    from simulst.cards import load_card

    card = load_card(name, SHIPPED, "NAR head", {"format": FORMAT})
    data = card.data
    return card.load_into(head_net(data["dim"], data["width"], data["layers"], data["stack"])), data


@dataclass(frozen=True)
class NarOptions(Options):
    """The non-autoregressive model: a CTC head over the frozen Whisper encoder (English transcription)."""

    head: str = opt("ctc-whisper-base-en", "shipped head name or the path of a head's card (NAME.json beside NAME.pt)")
    encoder: Literal["auto", "ctranslate2", "torch"] = opt("auto", "what runs the Whisper encoder (as the whisper backend's --encoder)")
    threads: int = opt(0, "CPU threads of the encoder and the head (0: every core this process may use)", min=0)
    device: Device = opt("auto", DEVICE_HELP)
    dtype: Dtype = opt("auto", DTYPE_HELP)


class NarBackend(Backend):
    """Shared encoder and head; ``open`` gives each session a stream."""

    Options = NarOptions
    prefix = "nar"

    def __init__(self, options: NarOptions = NarOptions()) -> None:
        from simulst import build
        from simulst.models.whisper import WhisperOptions

        self.options = options
        self.net, self.card = load_head(options.head)
        self.encoder = build.backend("whisper", WhisperOptions(model=self.card["encoder"], encoder=options.encoder, threads=options.threads, decoder_threads=0,
                                                               pad_ms=self.card["pad_ms"], device=options.device, dtype=options.dtype))
        self.net.to(self.encoder.device, self.encoder.model.dtype)
        if self.encoder.identity != self.card["model"]:
            raise OptionError(f"NAR head {options.head} was trained on {self.card['model']}, not on {self.encoder.identity}")
        self.sample_rate, self.frame_ms = self.encoder.sample_rate, self.encoder.frame_ms
        self.identity = f"nar:{self.card['model']}:{Path(options.head).stem}"

    @classmethod
    def on_cores(cls, options: NarOptions, threads: int, workers: int) -> NarOptions:
        return dataclasses.replace(options, threads=options.threads or threads)

    def translates(self, options: SessionOptions) -> bool:
        """It transcribes: translation is a cascade's (its transcript through text MT)."""
        return False

    def open(self, options: SessionOptions) -> NarStream:
        if options.primer() or options.glossary():
            raise OptionError("the NAR head reads no prompt or terms: leave out --prompt and --terms")
        source, target = options.src_lang or "en", options.tgt_lang if options.task == "translate" else options.src_lang
        if source != "en" or (target or "en") != "en":
            raise OptionError(f"the NAR head {Path(self.options.head).stem} transcribes English only (asked {source}->{target}): use --task transcribe --src-lang en, or the whisper backend")
        return NarStream(self)

    def logprobs(self, audio: np.ndarray) -> tuple[np.ndarray, float]:
        """Per-frame character log-probabilities over the frames that hold ``audio``, and the encoder's ms."""
        import torch

        started = time.perf_counter()
        encoded = self.encoder.encode(audio[-30 * self.sample_rate :])
        encode_ms = (time.perf_counter() - started) * 1000
        frames = min(encoded.shape[1], self.frames(len(audio)))
        with torch.inference_mode():
            return self.net(encoded[:, :frames])[0].float().cpu().numpy(), encode_ms

    @property
    def stack(self) -> int:
        return self.net.stack


class NarStream:
    def __init__(self, backend: NarBackend) -> None:
        self.backend = backend

    def begin(self, audio: np.ndarray, prefix: Sequence[int], final: bool, context: Sequence[int] = ()) -> NarHypothesis | None:
        if len(audio) == 0:
            return None
        logprobs, encode_ms = self.backend.logprobs(audio)
        frames = self.backend.frames(len(audio))
        hyp = NarHypothesis(logprobs, list(prefix), self.backend.stack, min(frames, len(logprobs) * self.backend.stack))
        hyp.encode_ms = encode_ms
        return hyp

    def detokenize(self, tokens: Sequence[int]) -> str:
        return decode_ids(tokens)


class NarHypothesis(Hypothesis):
    """The whole continuation comes from one pass; ``propose`` reads it out symbol by symbol."""

    def __init__(self, logprobs: np.ndarray, prefix: list[int], stack: int = 1, frames: int | None = None) -> None:
        self.frames = frames if frames is not None else len(logprobs) * stack
        self._stack = stack
        self._logprobs = logprobs
        self._rest = continue_prefix(logprobs, prefix)
        self._at = 0
        self.steps = 1
        self.encode_ms = 0.0

    def propose(self, banned: Collection[int] = ()) -> Candidate:
        if self._at >= len(self._rest) or self._rest[self._at][0] in banned:
            return Candidate(token=BLANK, starts_word=False, is_end=True, attention=np.full(max(self.frames, 1), 1 / max(self.frames, 1)))
        symbol, step = self._rest[self._at]
        attention = np.zeros(self.frames)
        attention[min(step * self._stack, self.frames - 1)] = 1.0
        return Candidate(token=symbol, starts_word=symbol == SPACE, is_end=False, attention=attention, logprob=float(self._logprobs[step, symbol]))

    def accept(self, candidate: Candidate) -> None:
        self._at += 1
