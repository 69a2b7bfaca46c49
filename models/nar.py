"""A non-autoregressive backend: a CTC head over the frozen Whisper encoder, one parallel pass per update.

The head (a projection, a few transformer layers, and a projection into Whisper's token-embedding space) reads the
Whisper encoder's states and the embeddings of the session's language and task tokens, and gives per-step
log-probabilities over a blank and the Whisper tokens of its training targets, scored against Whisper's own
embeddings of them. It translates X->en and transcribes English, as the frozen model does. The hypothesis is the
best path, collapsed (repeats merged, blanks dropped). No decoder steps: the cost of an update is the encoder pass
(over the audio alone: the head needs no silence pad) plus one small pass, whatever the length of the output. The
committed prefix is kept by aligning it to the steps first (best CTC path through the prefix, then the best symbol
per remaining step), so the hypothesis continues what was committed. Each token is placed at the step CTC emits
it, which stands for a decoder's cross-attention in the policies and the session.

Trained by ``simulst train-nar`` (``simulst.training.nar``); heads shipped with simulst live in ``models/heads``,
a head is named by its shipped name or its card's path (``simulst.cards``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Literal, Sequence

import numpy as np

from simulst.errors import OptionError
from simulst.models.base import Backend, Candidate, Hypothesis
from simulst.models.device import DEVICE_HELP, DTYPE_HELP, Device, Dtype
from simulst.options import Options, SessionOptions, opt

BLANK = 0
SHIPPED = Path(__file__).parent / "heads"
FORMAT = "ctc-whisper-tokens-v1"


def collapse(best: Sequence[int], previous: int = BLANK) -> list[tuple[int, int]]:
    """``(symbol, step)`` of a step-wise best path: repeats merged, blanks dropped (``previous``: the symbol
    just before the first step)."""
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


def head_net(table, vocab: Sequence[int], dim: int, width: int = 256, layers: int = 3, stack: int = 2):
    """The CTC head over Whisper's token-embedding ``table`` (shared, not trained): ``stack`` encoder frames
    concatenated into one step, a projection plus the session's language and task token embeddings, ``layers``
    transformer layers, a projection into the embedding space, and per-step log-probabilities over the blank
    (symbol 0) and ``vocab`` (symbol i + 1: Whisper token ``vocab[i]``)."""
    import torch

    class CtcHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stack = stack
            self.table = table
            self.register_buffer("vocab", torch.as_tensor(list(vocab)), persistent=False)
            self.project = torch.nn.Linear(dim * stack, width)
            self.condition = torch.nn.Linear(2 * dim, width)
            layer = torch.nn.TransformerEncoderLayer(width, 4, 4 * width, dropout=0.1, batch_first=True, norm_first=True)
            self.layers = torch.nn.TransformerEncoder(layer, layers, norm=torch.nn.LayerNorm(width), enable_nested_tensor=False)
            self.out = torch.nn.Linear(width, dim)
            self.blank = torch.nn.Parameter(torch.zeros(1, dim))
            self.bias = torch.nn.Parameter(torch.zeros(len(vocab) + 1))
            self._scorer = None

        def forward(self, states, condition, padding=None):
            """``states``: batch x frames x dim; ``condition``: batch x 2, the language and task token ids;
            ``padding``: batch x frames, True at padding. Returns batch x ceil(frames / stack) x symbols."""
            batch, frames, _ = states.shape
            extra = -frames % self.stack
            if padding is not None:  # a step's padded frames are zeros, as after the end of an utterance alone
                states = states.masked_fill(padding[..., None], 0.0)
                padding = torch.nn.functional.pad(padding, (0, extra), value=True)[:, :: self.stack]
            states = torch.nn.functional.pad(states, (0, 0, 0, extra)).reshape(batch, (frames + extra) // self.stack, -1)
            tokens = self.table[condition.to(self.table.device)].to(states.dtype).reshape(batch, -1)
            x = self.layers(self.project(states) + self.condition(tokens)[:, None], src_key_padding_mask=padding)
            weight, bias = self.scorer()
            return (x @ weight + bias).log_softmax(-1)

        def scorer(self):
            """``out`` folded into the embeddings: ``out(x) @ E.T + bias`` is ``x @ W + b`` with ``E`` the blank and
            the vocabulary's embeddings (a step then costs ``width``, not ``dim``, multiplications a symbol).
            Computed once in eval mode, every pass while training."""
            if self.training or self._scorer is None:
                embeddings = torch.cat([self.blank, self.table[self.vocab].to(self.blank.dtype)])
                folded = ((embeddings @ self.out.weight).T, embeddings @ self.out.bias + self.bias)
                self._scorer = None if self.training else folded
                return folded
            return self._scorer

        def train(self, mode: bool = True):
            self._scorer = None
            return super().train(mode)

    return CtcHead()


@dataclass(frozen=True)
class NarOptions(Options):
    """The non-autoregressive model: a CTC head over the frozen Whisper encoder (X->en translation, English transcription)."""

    head: str = opt("ctc-whisper-base", "shipped head name or the path of a head's card (NAME.json beside NAME.pt)")
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
        from simulst.cards import load_card
        from simulst.models.whisper import WhisperOptions

        self.options = options
        head = load_card(options.head, SHIPPED, "NAR head", {"format": FORMAT})
        card = self.card = head.data
        self.encoder = build.backend("whisper", WhisperOptions(model=card["encoder"], encoder=options.encoder, threads=options.threads, decoder_threads=0,
                                                               pad_ms=card["pad_ms"], device=options.device, dtype=options.dtype))
        if self.encoder.identity != card["model"]:
            raise OptionError(f"NAR head {options.head} was trained on {card['model']}, not on {self.encoder.identity}")
        table = self.encoder.model.model.decoder.embed_tokens.weight.detach()
        self.net = head.load_into(head_net(table, card["vocab"], card["dim"], card["width"], card["layers"], card["stack"]))
        self.net.to(self.encoder.device, self.encoder.model.dtype)
        self.tokens = np.asarray([BLANK, *self.card["vocab"]])  # symbol -> Whisper token
        self.symbols = {int(t): i for i, t in enumerate(self.tokens) if i}
        self.sample_rate, self.frame_ms = self.encoder.sample_rate, self.encoder.frame_ms
        self.identity = f"nar:{self.card['model']}:{Path(options.head).stem}"

    @classmethod
    def on_cores(cls, options: NarOptions, threads: int, workers: int) -> NarOptions:
        return dataclasses.replace(options, threads=options.threads or threads)

    def translates(self, options: SessionOptions) -> bool:
        """Into English, as the frozen model it learned from."""
        return options.tgt_lang == "en"

    def open(self, options: SessionOptions) -> NarStream:
        if options.primer() or options.glossary():
            raise OptionError("the NAR head reads no prompt or terms: leave out --prompt and --terms")
        source, languages = options.src_lang, self.card["languages"]
        if source is not None and source not in languages:
            raise OptionError(f"the NAR head {Path(self.options.head).stem} was trained on speech in {', '.join(languages)}, not {source!r}: use the whisper backend")
        if options.task == "translate" and options.tgt_lang != "en" or options.task == "transcribe" and source not in (None, "en"):
            target = options.tgt_lang if options.task == "translate" else source
            raise OptionError(f"the NAR head translates into English and transcribes English only (asked {source}->{target}): use the whisper backend or a cascade")
        return NarStream(self, options)

    def logprobs(self, audio: np.ndarray, language: str | None, task: str) -> tuple[np.ndarray, float, str]:
        """Per-step log-probabilities over the frames that hold ``audio``, the encoder's ms and the source
        language (detected by Whisper's decoder where ``language`` is None)."""
        import torch

        started = time.perf_counter()
        encoded = self.encoder.encode(audio[-30 * self.sample_rate :])
        encode_ms = (time.perf_counter() - started) * 1000
        if language is None:
            language = self.encoder.detect_language(encoded)
            language = language if language in self.card["languages"] else "en"
        frames = min(encoded.shape[1], self.frames(len(audio)))
        task = "transcribe" if language == "en" else task
        condition = torch.tensor([[self.encoder.languages[language], self.encoder.task_ids[task]]])
        with torch.inference_mode():
            return self.net(encoded[:, :frames], condition)[0].float().cpu().numpy(), encode_ms, language

    @property
    def stack(self) -> int:
        return self.net.stack


class NarStream:
    def __init__(self, backend: NarBackend, options: SessionOptions) -> None:
        self.backend, self.options = backend, options
        self.language = options.src_lang

    def begin(self, audio: np.ndarray, prefix: Sequence[int], final: bool, context: Sequence[int] = ()) -> NarHypothesis | None:
        b = self.backend
        if len(audio) == 0 or self.language is None and not final and len(audio) < b.encoder.options.detect_ms * b.sample_rate / 1000:
            return None
        logprobs, encode_ms, self.language = b.logprobs(audio, self.language, self.options.task)
        frames = b.frames(len(audio))
        hyp = NarHypothesis(b, logprobs, [b.symbols[t] for t in prefix if t in b.symbols], min(frames, len(logprobs) * b.stack))
        hyp.encode_ms = encode_ms
        return hyp

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.backend.encoder.tokenizer.decode(list(tokens), skip_special_tokens=True)


class NarHypothesis(Hypothesis):
    """The whole continuation comes from one pass; ``propose`` reads it out token by token."""

    def __init__(self, backend: NarBackend, logprobs: np.ndarray, prefix: list[int], frames: int) -> None:
        self.backend, self.frames = backend, frames
        self._logprobs = logprobs
        self._rest = continue_prefix(logprobs, prefix)
        self._at = 0
        self.steps = 1
        self.encode_ms = 0.0

    def propose(self, banned: Collection[int] = ()) -> Candidate:
        b = self.backend
        symbol, step = self._rest[self._at] if self._at < len(self._rest) else (BLANK, 0)
        token = int(b.tokens[symbol])
        if symbol == BLANK or token in banned:
            return Candidate(token=b.encoder.eot, starts_word=False, is_end=True, attention=np.full(max(self.frames, 1), 1 / max(self.frames, 1)))
        attention = np.zeros(self.frames)
        attention[min(step * b.stack, self.frames - 1)] = 1.0
        return Candidate(token=token, starts_word=bool(b.encoder.word_start[token]), is_end=False, attention=attention, logprob=float(self._logprobs[step, symbol]))

    def accept(self, candidate: Candidate) -> None:
        self._at += 1
