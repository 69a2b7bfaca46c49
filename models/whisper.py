"""Whisper through transformers, stepped token by token with cross-attention for the policies.

The encoder runs on the audio actually buffered (``encoder_window=buffer``: 20 ms per frame, no 30 s padding)
or, as a baseline, on the 30 s padded window (``padded``). The decoder is fed the task prompt and the
committed prefix, then proposes greedy tokens, reusing its key/value cache within a round.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import Collection, Literal, Sequence

import numpy as np

from simulst.errors import OptionError
from simulst.models import batching
from simulst.models.base import Backend, Candidate, Hypothesis, glossary_choice, proposal, unbanned
from simulst.models.device import DEVICE_HELP, DTYPE_HELP, Device, Dtype
from simulst.models.whisper_decoder import DecoderCache, Step, bfloat16_linears, decode
from simulst.options import Options, SessionOptions, opt

SAMPLE_RATE = 16000
HOP = 160
WINDOW_S = 30
MAX_DRAFT = 64
"""Most draft tokens checked in one decoder pass."""
VOICED_S = 10
"""Seconds of the buffer's end that the no-speech gate's Silero reading covers (at most 0.2 s of its compute)."""
BUCKET = 0.05
"""Buffers encoded in one pass are at most this much longer than the shortest of them."""


@dataclass(frozen=True)
class WhisperOptions(Options):
    """The shared Whisper model."""

    model: str = opt(
        "whisper-base",
        "embedded name (whisper-base, whisper-tiny.en), a CTranslate2 or transformers directory, or a hub id; a directory "
        "of another family (SeamlessM4T, Speech2Text, another speech encoder-decoder) runs on its own backend",
    )
    device: Device = opt("auto", DEVICE_HELP)
    dtype: Dtype = opt("auto", DTYPE_HELP)
    encoder_window: Literal["buffer", "padded"] = opt(
        "buffer", "encode only the buffered audio (fast) or the 30 s padded window Whisper was trained on (slow baseline)"
    )
    pad_ms: int = opt(8000, "silence appended to the buffered audio before encoding (tells Whisper where the audio ends)", min=0, max=30000)
    heads: Literal["alignment", "all"] = opt("alignment", "cross-attention heads the policy sees: the model's alignment heads or all heads")
    alignment: Literal["normalized", "raw"] = opt(
        "normalized",
        "where a token's source is: the peak of its attention after normalizing each frame over all tokens and a 7-frame "
        "median filter (frames every token attends, attention sinks, drop out), or the peak of its raw attention",
    )
    no_speech_threshold: float = opt(
        0.6,
        "before a segment's first word, wait while Whisper's no-speech probability is above this (Whisper's own "
        "threshold, on the 30 s window it is calibrated on; read there only where the round's own reading is above half "
        "of it and Silero VAD hears speech; 1 disables the gate)", min=0, max=1,
    )
    detect_ms: int = opt(2000, "audio (ms) buffered before the source language is detected, when it is not given", min=100, max=30000)
    max_context: int = opt(96, "most context tokens (text of dropped audio) given to the decoder as its previous-text prompt", min=0)
    encoder: Literal["auto", "ctranslate2", "torch"] = opt(
        "auto",
        "what runs the encoder: CTranslate2 (1.6x faster on CPU, the same states within float error; needs CTranslate2 "
        "weights, as the embedded models are), torch, or auto: CTranslate2 where the weights are CTranslate2's",
    )
    threads: int = opt(0, "CPU threads of the encoder, and of torch where torch runs it (0: every core this process may use)", min=0)
    encoder_workers: int = opt(
        1, "CTranslate2 encoder passes that can run at once, each on --threads threads over one copy of the weights "
        "(a server and a Ray replica raise it to 2, serve --model-threads to one per model thread: their sessions "
        "encode beside each other and beside the batched decoder)", min=1
    )
    decoder_threads: int = opt(
        1,
        "torch threads of the decoder where CTranslate2 runs the encoder (0: as --threads); its one-token steps gain "
        "nothing from a second thread and lose to the wake-ups after the encoder's pass", min=0
    )
    quantize: Literal["none", "int8", "int8-encoder"] = opt(
        "none",
        "int8: the linear layers' weights in int8 with dynamic activation quantization (the encoder's in CTranslate2 or "
        "torch, the decoder's in torch; attention kept in float); int8-encoder: the encoder's only",
    )
    decoder_dtype: Literal["auto", "float32", "bfloat16"] = opt(
        "auto",
        "the decoder's linear layers' weights and inputs (sums kept in float32): bfloat16 reads half the bytes a "
        "token step and feeds the prefix twice as fast where the CPU does bfloat16 natively (avx512_bf16, AMX), "
        "changing a word here and there (docs/performance.md); auto: bfloat16 on such a CPU, else float32",
    )


class WhisperBackend(Backend):
    """Shared weights and tokenizer; ``open`` gives each session its own stream."""

    sample_rate = SAMPLE_RATE
    frame_ms = 2 * HOP * 1000 / SAMPLE_RATE
    Options = WhisperOptions
    model_types = ("whisper",)

    def __init__(self, options: WhisperOptions = WhisperOptions()) -> None:
        import torch

        from simulst.build import usable_cores
        from simulst.models import device
        from simulst.models.whisper_load import load_whisper, model_identity

        self.device, dtype = device.resolve(options.device, options.dtype)
        bfloat16 = self.device == "cpu" and _bfloat16(options)
        threads = options.threads or usable_cores()
        torch.set_num_threads(threads)
        self.options = options
        self.decoder_dtype = "bfloat16" if bfloat16 else dtype
        self.identity = model_identity(options.model)
        assets = load_whisper(options.model)
        self.model = assets.model.eval()
        self.ct2 = None
        if options.encoder == "ctranslate2" or (options.encoder == "auto" and assets.ctranslate2 and self.device != "mps"):
            if assets.ctranslate2 is None or self.device == "mps":
                raise OptionError(f"--encoder ctranslate2 needs CTranslate2 weights and a CPU or CUDA device ({options.model} on {self.device})")
            kind = (dtype if self.device == "cuda" else "float32") if options.quantize == "none" else "int8"
            self.ct2 = assets.ctranslate2(kind, threads, options.encoder_workers, "cuda" if self.device == "cuda" else "cpu")
            torch.set_num_threads(options.decoder_threads or threads)
            self.model.model.encoder.layers = torch.nn.ModuleList()  # CTranslate2 runs them: their weights are not kept twice
        if options.quantize == "int8":
            self.model.model = torch.ao.quantization.quantize_dynamic(self.model.model, {torch.nn.Linear}, dtype=torch.qint8)
        elif options.quantize == "int8-encoder" and self.ct2 is None:
            self.model.model.encoder = torch.ao.quantization.quantize_dynamic(self.model.model.encoder, {torch.nn.Linear}, dtype=torch.qint8)
        if bfloat16:
            bfloat16_linears(self.model)
        self.numerics = (f"{self.device}, decoder {self.decoder_dtype}, encoder {'ctranslate2' if self.ct2 else 'torch'} {dtype}, "
                         f"quantize {options.quantize}")
        if self.device != "cpu":
            self.model.to(self.device, device.torch_dtype(dtype))
        self.tokenizer = assets.tokenizer
        config = self.model.config
        self.heads = assets.alignment_heads
        if options.heads == "all" or not self.heads:
            self.heads = [(layer, h) for layer in range(config.decoder_layers) for h in range(config.decoder_attention_heads)]
        special = self.tokenizer.token_to_id
        self.eot = special("<|endoftext|>")
        self.sot = special("<|startoftranscript|>")
        self.notimestamps = special("<|notimestamps|>")
        self.startofprev = special("<|startofprev|>")
        self.no_speech = special("<|nospeech|>") or special("<|nocaptions|>")
        self.task_ids = {t: special(f"<|{t}|>") for t in ("translate", "transcribe")}
        vocab = self.tokenizer.get_vocab(with_added_tokens=True)
        self.languages = {
            tok[2:-2]: i for tok, i in vocab.items() if tok.startswith("<|") and tok.endswith("|>") and 2 <= len(tok) - 4 <= 3 and tok[2:-2].isalpha()
        }
        self.multilingual = bool(self.languages) and self.task_ids["translate"] is not None
        size = config.vocab_size
        self.word_start = np.zeros(size, dtype=bool)
        for tok, i in vocab.items():
            if i < size and tok.startswith("\u0120"):
                self.word_start[i] = True
        mask = np.zeros(size, dtype=np.float32)
        mask[self.eot + 1 :] = -np.inf
        mask[[i for i in assets.suppress if i < size]] = -np.inf
        self.mask = torch.from_numpy(mask).to(self.device)
        begin = mask.copy()
        begin[[i for i in assets.suppress_begin if i < size]] = -np.inf
        self.begin_mask = torch.from_numpy(begin).to(self.device)
        from transformers.audio_utils import mel_filter_bank

        self.mel_filters = torch.from_numpy(
            mel_filter_bank(1 + 400 // 2, config.num_mel_bins, 0.0, 8000.0, SAMPLE_RATE, norm="slaney", mel_scale="slaney")
        ).float()
        self.window = torch.hann_window(400)

    @classmethod
    def on_cores(cls, options: WhisperOptions, threads: int, workers: int) -> WhisperOptions:
        return dataclasses.replace(options, threads=options.threads or threads, encoder_workers=max(workers, options.encoder_workers))

    def translates(self, options: SessionOptions) -> bool:
        """Into English, as it was trained to."""
        return options.tgt_lang == "en"

    def open(self, options: SessionOptions) -> WhisperStream:
        src = options.src_lang
        if not self.multilingual:
            if (src or "en") != "en":
                raise OptionError(f"{self.options.model} is English-only: it cannot take {src} speech; use whisper-base")
            if options.task == "translate" and options.tgt_lang != "en":
                raise OptionError(f"{self.options.model} only transcribes English")
        elif src is not None and src not in self.languages:
            raise OptionError(f"unknown source language {src!r} for Whisper; known: {', '.join(sorted(self.languages))}")
        if options.max_buffer_ms + options.chunk_ms > WINDOW_S * 1000:
            raise OptionError(f"max_buffer_ms + chunk_ms must fit Whisper's {WINDOW_S} s window ({options.max_buffer_ms} + {options.chunk_ms})")
        if options.task == "translate" and options.tgt_lang != "en":
            raise OptionError(f"Whisper translates into English only, not into {options.tgt_lang!r}: use --task transcribe or a cascade model")
        return WhisperStream(self, options)

    def log_mel(self, audio: np.ndarray):
        import torch

        samples = torch.from_numpy(audio)
        if self.options.encoder_window == "padded":
            samples = torch.nn.functional.pad(samples, (0, WINDOW_S * SAMPLE_RATE - len(samples)))
        else:
            pad = min(self.options.pad_ms * SAMPLE_RATE // 1000, WINDOW_S * SAMPLE_RATE - len(samples))
            samples = torch.nn.functional.pad(samples, (0, max(pad, 400 - len(samples))))
        spec = torch.stft(samples, 400, HOP, window=self.window, return_complex=True)[..., :-1].abs() ** 2
        mel = (self.mel_filters.T @ spec).clamp(min=1e-10).log10()
        mel = torch.maximum(mel, mel.max() - 8.0)
        return ((mel + 4.0) / 4.0)[None]

    def encode(self, audio: np.ndarray):
        """Encoder states for ``audio`` (at most 30 s), without Whisper's fixed 3000-frame check. When this thread
        is routed to a batcher (models/batching.py), torch's encoder shares a pass with other sessions' buffers;
        CTranslate2's runs aside, on its own workers, while the batches go on."""
        return batching.run(self.encode_batch, audio, aside=self.ct2 is not None)

    def encode_batch(self, audios: Sequence[np.ndarray]) -> list:
        """Encoder states of several buffers. In torch, those of about the same length (within ``BUCKET``) in one
        pass, the shorter right-padded and their padding masked out of the self-attention (and zeroed between the
        convolutions, where the unpadded pass has zeros too). CTranslate2 cannot mask, and its states for a buffer
        change (in the last float bits) with the buffers in its pass, so there each buffer has a pass of its own.
        On CPU a pass costs about its frames: four equal buffers in one pass save 5%, padding 3 s to 12 s costs
        50% (docs/performance.md)."""
        mels = [self.log_mel(audio) for audio in audios]
        if self.ct2 is not None:
            return [self._encode([mel])[0] for mel in mels]
        order = sorted(range(len(mels)), key=lambda i: mels[i].shape[-1])
        buckets: list[list[int]] = []
        for i in order:
            if buckets and mels[i].shape[-1] <= mels[buckets[-1][0]].shape[-1] * (1 + BUCKET):
                buckets[-1].append(i)
            else:
                buckets.append([i])
        out: list = [None] * len(mels)
        for bucket in buckets:
            for i, encoded in zip(bucket, self._encode([mels[i] for i in bucket])):
                out[i] = encoded
        return out

    def _encode(self, mels: list) -> list:
        import torch

        if self.ct2 is not None:
            from ctranslate2 import StorageView

            out = self.ct2.encode(StorageView.from_array(np.ascontiguousarray(torch.cat(mels).numpy())), to_cpu=True)
            states = torch.from_numpy(np.array(out)).to(self.device, self.model.dtype)
            return [states[i : i + 1] for i in range(len(mels))]
        encoder = self.model.model.encoder
        lengths = [m.shape[-1] for m in mels]
        longest = max(lengths)
        frames = [-(-n // 2) for n in lengths]
        with torch.inference_mode():
            x = torch.cat([torch.nn.functional.pad(m, (0, longest - m.shape[-1])) for m in mels]).to(self.device, self.model.dtype)
            x = torch.nn.functional.gelu(encoder.conv1(x))
            mask = None
            if len(set(lengths)) > 1:
                x = x * (torch.arange(longest).view(1, 1, -1) < torch.tensor(lengths).view(-1, 1, 1)).to(x.device)
                mask = (torch.arange(-(-longest // 2)).view(1, -1) < torch.tensor(frames).view(-1, 1))[:, None, None].to(x.device)
            x = torch.nn.functional.gelu(encoder.conv2(x)).permute(0, 2, 1)
            x = x + encoder.embed_positions.weight[: x.shape[1]]
            for layer in encoder.layers:
                x = _encoder_layer(layer, x, mask)
            x = encoder.layer_norm(x)
        return [x[i : i + 1, : frames[i]] for i in range(len(mels))]

    def decode_steps(self, steps: list[Step]) -> list[Step]:
        """One decoder pass for several hypotheses (models/whisper_decoder.py)."""
        decode(self.model, steps, self.heads)
        return steps

    def detect_language(self, encoded) -> str:
        """The most likely source language: the language token the decoder proposes after start-of-transcript."""
        import torch

        logits = self.forced(encoded, [self.sot], [0]).logits[0]
        codes = sorted(self.languages)
        ids = torch.tensor([self.languages[c] for c in codes], device=logits.device)
        return codes[int(torch.argmax(logits[ids]))]

    def silent(self, audio: np.ndarray, previous: list[int]) -> bool:
        """Whether Whisper reads ``audio`` as holding no speech: its no-speech probability (at the start of
        transcript, after the ``previous`` text prompt) above ``no_speech_threshold``. Read as Whisper computes it,
        on the 30 s window: the rounds' shorter encoding (the buffer and a silence pad) deflates it, to where
        silence and speech overlap (0.60-0.88 against up to 0.68 on the dev clips' first rounds; 0.78-0.94
        against up to 0.61 on the window, docs/models.md)."""
        import torch

        if self.no_speech is None or self.options.no_speech_threshold >= 1:
            return False
        window = self.encode(np.pad(audio, (0, WINDOW_S * SAMPLE_RATE - len(audio))))
        logits = self.forced(window, [*previous, self.sot], [len(previous)]).logits[0]
        with torch.inference_mode():
            return float(torch.softmax(logits, -1)[self.no_speech]) > self.options.no_speech_threshold

    def forced(self, encoded, ids: list[int], project: list[int]) -> Step:
        """One teacher-forced decoder pass over ``ids`` (the streaming decoder's own pass, through the batcher
        where one serves this thread): the logits and hidden states at ``project``, the alignment heads'
        cross-attention of every position."""
        return batching.run(self.decode_steps, Step(ids, DecoderCache(encoded), project))


def _bfloat16(options: WhisperOptions) -> bool:
    """Whether the decoder runs its linear layers in bfloat16 (``--decoder-dtype``)."""
    if options.decoder_dtype != "auto":
        if options.decoder_dtype == "bfloat16" and options.quantize == "int8":
            raise OptionError("--decoder-dtype bfloat16 and --quantize int8 both set the decoder's weights: choose one")
        return options.decoder_dtype == "bfloat16"
    return options.quantize != "int8" and native_bfloat16()


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (without it torch emulates bfloat16, slower than float32)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _encoder_layer(layer, x, mask=None):
    """A Whisper encoder layer with fused attention (no frames x frames weights are materialized: they are not
    needed, and their size changing every round would fragment the heap of a long-running process); ``mask``
    (batch x 1 x 1 x frames, True where a frame is audio) keeps padded frames out of the attention."""
    import torch

    attn, (batch, length, dim) = layer.self_attn, x.shape

    def heads(t):
        return t.view(batch, length, attn.num_heads, -1).transpose(1, 2)

    h = layer.self_attn_layer_norm(x)
    out = torch.nn.functional.scaled_dot_product_attention(heads(attn.q_proj(h)), heads(attn.k_proj(h)), heads(attn.v_proj(h)), attn_mask=mask)
    x = x + attn.out_proj(out.transpose(1, 2).reshape(batch, length, dim))
    return x + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(x))))


def alignments(rows, positions, width: int = 7, causal: bool = True):
    """Alignment scores per frame of the decoder ``positions`` (``rows``: heads x positions x frames of attention):
    each head's attention standardized per frame over the positions up to that one (a frame every token attends
    stands out for none), median-filtered over ``width`` frames, averaged over heads. Causal, so one teacher-forced
    pass gives every position the score that incremental decoding gives it; ``causal=False`` standardizes over
    all positions (word timing of a finished transcript)."""
    import torch

    if causal:
        count = torch.arange(1, rows.shape[1] + 1, dtype=rows.dtype).view(1, -1, 1)
        mean = rows.cumsum(1) / count
        std = ((rows * rows).cumsum(1) / count - mean * mean).clamp(min=0).sqrt()
    else:
        std, mean = torch.std_mean(rows, dim=1, keepdim=True, unbiased=False)
        std, mean = std.expand_as(rows), mean.expand_as(rows)
    positions = torch.as_tensor(positions) % rows.shape[1]
    z = torch.where((positions > 0).view(1, -1, 1), (rows[:, positions] - mean[:, positions]) / (std[:, positions] + 1e-6), rows[:, positions])
    padded = torch.nn.functional.pad(z, (width // 2, width // 2), mode="replicate")
    return padded.unfold(-1, width, 1).median(-1).values.mean(0)


class WhisperStream:
    """One session's view of the model: its languages, task, primer (the prompt) and glossary (the terms)."""

    def __init__(self, backend: WhisperBackend, options: SessionOptions) -> None:
        self.backend, self.options = backend, options
        self.language = options.src_lang if backend.multilingual else None
        text = options.primer()
        self.primer = backend.tokenizer.encode(" " + text, add_special_tokens=False).ids if text else []
        self.terms = [backend.tokenizer.encode(" " + term, add_special_tokens=False).ids for term in options.glossary()]
        if self.primer and (backend.startofprev is None or len(self.primer) > backend.options.max_context // 2):
            raise OptionError(f"the prompt takes {len(self.primer)} tokens; {backend.options.model} reads at most "
                              f"{backend.options.max_context // 2 if backend.startofprev is not None else 0} before the stream")

    def previous(self, context: Sequence[int]) -> list[int]:
        """The previous-text part of the prompt: the primer, then the context's last tokens (``max_context`` in all)."""
        b = self.backend
        if not (context or self.primer) or b.startofprev is None:
            return []
        keep = b.options.max_context - len(self.primer)
        return [b.startofprev, *self.primer, *(list(context)[-keep:] if keep > 0 else [])]

    def prompt(self, context: Sequence[int] = ()) -> list[int]:
        b = self.backend
        previous = self.previous(context)
        if not b.multilingual:
            return [*previous, b.sot, b.notimestamps]
        return [*previous, b.sot, b.languages[self.language], b.task_ids[self.options.task], b.notimestamps]

    def begin(self, audio: np.ndarray, prefix: Sequence[int], final: bool, context: Sequence[int] = ()) -> WhisperHypothesis | None:
        b = self.backend
        audio = audio[-WINDOW_S * SAMPLE_RATE :]
        if len(audio) == 0:
            return None
        if b.multilingual and self.language is None and not final and len(audio) < b.options.detect_ms * SAMPLE_RATE / 1000:
            return None
        started = time.perf_counter()
        encoded = b.encode(audio)
        encode_ms = (time.perf_counter() - started) * 1000
        if b.multilingual and self.language is None:
            self.language = b.detect_language(encoded)
        frames = min(encoded.shape[1], b.frames(len(audio)))
        hyp = WhisperHypothesis(b, encoded, frames, self.prompt(list(context)), list(prefix))
        hyp.encode_ms, hyp.audio, hyp.terms = encode_ms, audio, self.terms
        return hyp

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.backend.tokenizer.decode(list(tokens), skip_special_tokens=True)


class WhisperHypothesis(Hypothesis):
    """Greedy proposals over one encoding; the decoder cache grows as tokens are accepted.

    ``draft(tokens)`` verifies a guess of the coming tokens (the previous round's tail) in one parallel decoder
    pass: while the accepted tokens follow the draft, the next proposals come from that pass with no further
    decoder step. At a token that differs, the cache is cut back and the next pass, which has to feed that token
    anyway, checks the rest of the draft after it (a replaced or dropped draft token). The tokens are those of
    plain greedy stepping; ``steps`` counts the sequential decoder passes.
    """

    def __init__(self, backend: WhisperBackend, encoded, frames: int, prompt: list[int], prefix: list[int]) -> None:
        self.backend, self.encoded, self.frames = backend, encoded, frames
        self.cache = DecoderCache(encoded)
        self._feed = prompt + prefix
        self._first = not prefix
        self._previous = prompt[: prompt.index(backend.sot)]  # the previous-text prompt, before start of transcript
        self._no_speech: float | None = None  # read at the start of transcript in the first pass, before a first word
        self._candidate: Candidate | None = None
        self._rows = None  # alignment heads' cross-attention of every decoder position so far: heads x tokens x frames
        self._drafted: list[tuple[int, Candidate, object]] = []  # (draft token, proposal after it, its logprobs)
        self._source: list[int] = []  # the draft
        self._next = 0  # the draft token the output is expected to match next
        self.steps = 0
        self.encode_ms = 0.0  # the encoder's share of the round
        self.audio = np.zeros(0, np.float32)  # the round's audio, for the no-speech gate
        self.terms: list[list[int]] = []  # the glossary's terms as tokens
        self._output = list(prefix)  # the tokens written after the prompt

    def propose(self, banned: Collection[int] = ()) -> Candidate:
        if self._candidate is None:
            self._check(self._source[self._next :])
        return unbanned(self._candidate, self._logprobs, banned, self.backend.word_start, (self.backend.eot,))

    def accept(self, candidate: Candidate) -> None:
        self._first = False
        self._output.append(candidate.token)
        if self._drafted and self._drafted[0][0] == candidate.token:
            _, self._candidate, self._logprobs = self._drafted.pop(0)
            self._next += 1
            return
        if self._drafted:  # the draft went wrong here: forget its positions, pick it up again after this token
            keep = self.cache.length - len(self._drafted)
            self.cache.crop(keep)
            self._rows = None if self._rows is None else self._rows[:, :keep]
            self._drafted = []
        if self._next < len(self._source):  # where the output stands in the draft: past this token, a dropped one
            ahead = self._source[self._next : self._next + 4]  # before it, or one it replaced
            self._next += ahead.index(candidate.token) + 1 if candidate.token in ahead else 1
        self._feed, self._candidate = [candidate.token], None

    def speech(self) -> bool:
        """The no-speech gate, three readings in order of cost. The round's own encoding (the buffer and the
        silence pad) reads Whisper's no-speech probability lower than the 30 s window it is calibrated on: below
        half the threshold it is speech all the same (the window read at most 0.52 there on the dev clips' first
        rounds). Otherwise Silero VAD must hear speech in the last ``VOICED_S`` seconds (a few ms a second of
        audio), and then the window decides (``WhisperBackend.silent``: an encoder pass; both counted in the
        round's encoder share)."""
        from simulst.streaming.vad import voiced

        b = self.backend
        if b.no_speech is None or b.options.no_speech_threshold >= 1:
            return True
        if self._no_speech is None:
            self.propose()
        if self._no_speech is not None and self._no_speech < b.options.no_speech_threshold / 2:
            return True
        started = time.perf_counter()
        heard = voiced(self.audio[-VOICED_S * SAMPLE_RATE :]) and not b.silent(self.audio, self._previous)
        self.encode_ms += (time.perf_counter() - started) * 1000
        return heard

    def draft(self, tokens: Sequence[int]) -> None:
        """Check ``tokens`` as the likely continuation in one decoder pass (call before the first ``accept``)."""
        if tokens and not self._source:
            self._source, self._next = list(tokens), 0
            if self._candidate is not None:
                self._check(self._source)

    def _check(self, guess: list[int]) -> None:
        """One pass over the pending feed and ``guess``: the next proposal, and one after each guessed token."""
        results = self._run(guess[:MAX_DRAFT])
        if self._candidate is None:
            (self._candidate, self._logprobs), results = results[0], results[1:]
        self._drafted = [(token, candidate, logprobs) for token, (candidate, logprobs) in zip(guess, results)]

    def _run(self, draft: list[int]) -> list[tuple[Candidate, object]]:
        """One decoder pass over the pending feed and ``draft``: the proposal (and log-probabilities) after the
        feed and after each draft token."""
        import torch

        b = self.backend
        ids = self._feed + draft
        predicted = list(range(len(ids) - len(draft) - 1 if self._feed else 0, len(ids)))
        sot = self._first and self._rows is None and b.no_speech is not None  # the gate's cheap reading
        step = batching.run(b.decode_steps, Step(ids, self.cache, ([len(self._previous)] if sot else []) + predicted))
        self.steps += 1
        logits, hidden = step.logits, step.hidden
        if sot:
            with torch.inference_mode():
                self._no_speech = float(torch.softmax(logits[0].float(), -1)[b.no_speech])
            logits, hidden = logits[1:], hidden[1:]
        self._rows = step.cross if self._rows is None else torch.cat([self._rows, step.cross], 1)
        offset = self._rows.shape[1] - len(ids)
        self._feed, begin = [], self._first and bool(self._feed)
        histories = [self._output + draft[:k] for k in range(len(predicted))] if self.terms else None
        return proposals(b, logits, hidden, self._rows, [offset + i for i in predicted], begin, histories, self.terms)


def proposals(
    backend: WhisperBackend, logits, hidden, rows, positions: list[int], begin: bool, histories=None, terms=()
) -> list[tuple[Candidate, object]]:
    """The greedy proposal after each decoder position in ``positions`` and the log-probabilities it was chosen
    from: ``logits`` and ``hidden`` hold one row a position, ``rows`` the alignment heads' cross-attention of
    every position so far (heads x positions x frames), indexed by ``positions``; ``begin``: the first position
    proposes the transcript's first token (Whisper's begin suppression applies); ``histories``: the output before
    each position, where a glossary's ``terms`` may choose the token (``glossary_choice``). Streaming rounds and
    teacher-forced training passes read their candidates here alike."""
    import torch

    b = backend
    with torch.inference_mode():
        masks = torch.stack([b.begin_mask if begin and k == 0 else b.mask for k in range(len(positions))])
        logprobs = torch.log_softmax(logits.float() + masks, dim=-1).cpu()
        tokens = logprobs.argmax(-1)
        rows = rows.float().cpu()
        alignment = alignments(rows, positions).numpy() if b.options.alignment == "normalized" else None
        attention = rows[:, positions].mean(0).numpy()
        hidden = hidden.float().cpu()
        results = []
        for k in range(len(positions)):
            token = int(tokens[k])
            if histories is not None:
                chosen = glossary_choice(logprobs[k], histories[k], terms, b.word_start)
                token = token if chosen is None else chosen
            candidate = proposal(logprobs[k], token, b.word_start, (b.eot,), attention[k], hidden[k], None if alignment is None else alignment[k])
            results.append((candidate, logprobs[k]))
    return results
