"""Speech encoder-decoders of transformers (``AutoModelForSpeechSeq2Seq``) stepped token by token for the policies.

The encoder runs on the buffered audio (the model's own features of it, no padding window); the decoder is fed
its start tokens (decoder start and, where the model has one, the target language's token) and the committed
prefix, then proposes greedy tokens with the chosen heads' cross-attention, reusing its key/value cache within a
round. With the whole clip and nothing committed this is transformers' own greedy ``generate``, token for token.
A family (SeamlessM4T v2, Speech2Text) is a subclass that knows its language tokens and its alignment default;
``seq2seq`` itself takes any other such model whose tokenizer spells language tokens in a known way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Sequence

import numpy as np

from simulst.errors import ModelError, OptionError
from simulst.models.base import Backend, Candidate, Hypothesis, proposal, unbanned
from simulst.models.device import DEVICE_HELP, DTYPE_HELP, Device, Dtype
from simulst.options import Options, SessionOptions, opt

LANGUAGE_TOKEN = re.compile(r"^(?:__([a-z]{2,3})__|<lang:([a-z]{2,3})>)$")
"""How tokenizers spell a language token: SeamlessM4T's ``__deu__``, multilingual Speech2Text's ``<lang:de>``."""


@dataclass(frozen=True)
class Seq2SeqOptions(Options):
    """A transformers speech encoder-decoder (a directory, or a hub id for users with a hub)."""

    model: str = opt("", "the model: a directory saved by transformers (config.json, weights, tokenizer, feature extractor) or a hub id")
    heads: str = opt(
        "auto",
        "cross-attention the policies see, averaged: auto (every head of the decoder layer at two thirds of its depth, "
        "layer 4 of 6 as AlignAtt and EDAtt used with Speech2Text-like models), all (every head of every layer), last "
        "(every head of the last layer), or LAYER:HEAD pairs counted from 0 (3:0,3:2)",
    )
    threads: int = opt(0, "CPU threads of torch (0: every core this process may use)", min=0)
    device: Device = opt("auto", DEVICE_HELP)
    dtype: Dtype = opt("auto", DTYPE_HELP)

    def check(self) -> None:
        if self.heads not in ("auto", "all", "last"):
            try:
                [tuple(int(x) for x in pair.split(":")) for pair in self.heads.split(",")]
            except ValueError:
                raise OptionError(f"heads must be auto, all, last or LAYER:HEAD pairs, not {self.heads!r}") from None


class Seq2SeqBackend(Backend):
    """Shared weights, features and tokenizer of a speech encoder-decoder; ``open`` gives each session a stream."""

    Options = Seq2SeqOptions
    prefix = "seq2seq"

    def __init__(self, options: Seq2SeqOptions = Seq2SeqOptions()) -> None:
        import torch
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForSpeechSeq2Seq, AutoTokenizer

        from simulst.build import usable_cores
        from simulst.models import device

        if not options.model:
            raise OptionError(f"the {self.prefix} backend needs a model: --{self.prefix}-model DIR (or --model DIR)")
        torch.set_num_threads(options.threads or usable_cores())
        self.options = options
        self.device, dtype = device.resolve(options.device, options.dtype)
        try:
            config = AutoConfig.from_pretrained(options.model)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read a transformers model at {options.model}: {exc}") from exc
        if self.model_types and config.model_type not in self.model_types:
            raise ModelError(f"{options.model} is a {config.model_type} model, not {' or '.join(self.model_types)}: use its backend (docs/models.md)")
        try:
            self.model = AutoModelForSpeechSeq2Seq.from_pretrained(options.model, attn_implementation="eager").eval()
            self.model.to(self.device, device.torch_dtype(dtype))
            self.features = AutoFeatureExtractor.from_pretrained(options.model)
            self.tokenizer = AutoTokenizer.from_pretrained(options.model)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{options.model} is not a speech encoder-decoder transformers can load ({config.model_type}): {exc}") from exc
        self.config = config
        self.identity = f"{config.model_type}:{Path(options.model).name}"
        self.numerics = f"{self.device}, {dtype}"
        self.sample_rate = int(self.features.sampling_rate)
        generation = self.model.generation_config
        self.start = [generation.decoder_start_token_id if generation.decoder_start_token_id is not None else config.decoder_start_token_id]
        eos = generation.eos_token_id if generation.eos_token_id is not None else config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [eos])
        vocab = self.tokenizer.convert_ids_to_tokens(list(range(self.model.get_output_embeddings().out_features)))
        self.word_start = np.array([bool(t) and t[0] in ("\u2581", "\u0120") for t in vocab])
        # language code -> the token that asks for output in it: the generation config's map (SeamlessM4T's), else
        # the tokenizer's language tokens
        self.languages = dict(generation.to_dict().get("text_decoder_lang_to_code_id") or {}) or {
            next(g for g in m.groups() if g): i for i, t in enumerate(vocab) if t and (m := LANGUAGE_TOKEN.match(t))
        }
        tone = 0.01 * np.sin(np.arange(4 * self.sample_rate, dtype=np.float32) * 0.05)  # 4 s: frames per second, heads
        probe = Seq2SeqHypothesis(self, self.encode(tone), self.start)
        self.frame_ms = 4000 / probe.frames
        self.heads = self._heads(options.heads, *probe.shape())

    def _heads(self, spec: str, layers: int, heads: int) -> list[tuple[int, int]]:
        """The (layer, head) pairs ``spec`` names, in a decoder of ``layers`` layers of ``heads`` heads."""
        if spec == "auto":
            return [(max(0, round(layers * 2 / 3) - 1), h) for h in range(heads)]
        if spec == "all":
            return [(layer, h) for layer in range(layers) for h in range(heads)]
        if spec == "last":
            return [(layers - 1, h) for h in range(heads)]
        pairs = [tuple(int(x) for x in pair.split(":")) for pair in spec.split(",")]
        if any(not 0 <= layer < layers or not 0 <= h < heads for layer, h in pairs):
            raise OptionError(f"heads {spec!r}: this model has {layers} decoder layers of {heads} heads")
        return pairs

    def code(self, lang: str) -> str:
        """The model's code for the language ``lang`` (as given by default)."""
        return lang

    def target(self, options: SessionOptions) -> str:
        """The language the session's output is in (the source's for transcription)."""
        lang = options.src_lang if options.task == "transcribe" else options.tgt_lang
        if lang is None:
            raise OptionError(f"{self.identity} needs the source language to transcribe: give --src-lang")
        return lang

    def prompt(self, options: SessionOptions) -> list[int]:
        """The decoder's start tokens for the session: decoder start, then the target language's token where the
        model has language tokens (a model without them translates into its one language)."""
        lang = self.code(self.target(options))
        if not self.languages:
            return list(self.start)
        if lang not in self.languages:
            raise OptionError(f"{self.identity} cannot write {lang!r}; its languages: {', '.join(sorted(self.languages))}")
        return self.start + [self.languages[lang]]

    def translates(self, options: SessionOptions) -> bool:
        """Into a language it has a token for; a model without language tokens translates into its one language."""
        return not self.languages or self.code(options.tgt_lang) in self.languages

    def open(self, options: SessionOptions) -> Seq2SeqStream:
        if options.primer() or options.glossary():
            raise OptionError(f"{self.identity} reads no prompt or terms (Whisper does): leave out --prompt and --terms")
        return Seq2SeqStream(self, self.prompt(options))

    def encode(self, audio: np.ndarray):
        """The encoder's states of the buffered audio (1 x frames x dim), from the model's own features of it."""
        import torch

        inputs = self.features(audio, sampling_rate=self.sample_rate, return_tensors="pt")
        name = self.model.main_input_name
        values = inputs[name] if name in inputs else inputs["input_features"]
        with torch.inference_mode():
            return self.model.get_encoder()(**{name: values.to(self.device, self.model.dtype)}).last_hidden_state

    def frames(self, samples: int) -> int:
        return max(1, round(samples * 1000 / self.sample_rate / self.frame_ms))


class Seq2SeqStream:
    def __init__(self, backend: Seq2SeqBackend, prompt: list[int]) -> None:
        self.backend, self.start = backend, prompt

    def begin(self, audio: np.ndarray, prefix: Sequence[int], final: bool, context: Sequence[int] = ()) -> Seq2SeqHypothesis | None:
        import time

        if len(audio) < self.backend.sample_rate // 10:  # a tenth of a second: fewer samples than a feature window
            return None
        started = time.perf_counter()
        encoded = self.backend.encode(audio)
        hyp = Seq2SeqHypothesis(self.backend, encoded, self.start + list(prefix))
        hyp.encode_ms = (time.perf_counter() - started) * 1000
        return hyp

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens``, with the space a word-initial first piece stands for (sentencepiece drops it)."""
        b = self.backend
        tokens = [t for t in tokens if t not in b.tokenizer.all_special_ids]
        text = b.tokenizer.decode(tokens, skip_special_tokens=True)
        return (" " + text.lstrip(" ")) if tokens and b.word_start[tokens[0]] else text


class Seq2SeqHypothesis(Hypothesis):
    """Greedy proposals over one encoding; the decoder's cache grows as tokens are accepted."""

    def __init__(self, backend: Seq2SeqBackend, encoded, feed: list[int]) -> None:
        self.backend, self.encoded, self.frames = backend, encoded, encoded.shape[1]
        self._feed, self._cache, self._rows = feed, None, None
        self._candidate: Candidate | None = None
        self._logprobs = None

    def propose(self, banned: Collection[int] = ()) -> Candidate:
        if self._candidate is None:
            self._step()
        return unbanned(self._candidate, self._logprobs, banned, self.backend.word_start, self.backend.eos)

    def accept(self, candidate: Candidate) -> None:
        self._feed, self._candidate = [candidate.token], None

    def shape(self) -> tuple[int, int]:
        """The decoder's layers and cross-attention heads, read off one step."""
        import torch

        with torch.inference_mode():
            ids = torch.tensor([self._feed], device=self.encoded.device)
            out = self.backend.model.get_decoder()(input_ids=ids, encoder_hidden_states=self.encoded, output_attentions=True, return_dict=True)
        return len(out.cross_attentions), out.cross_attentions[0].shape[1]

    def _step(self) -> None:
        import torch

        from simulst.models.whisper import alignments

        b = self.backend
        with torch.inference_mode():
            out = b.model.get_decoder()(
                input_ids=torch.tensor([self._feed], device=self.encoded.device), encoder_hidden_states=self.encoded, past_key_values=self._cache,
                use_cache=True, output_attentions=True, return_dict=True,
            )
            self._cache = out.past_key_values
            hidden = out.last_hidden_state[0, -1]
            logprobs = torch.log_softmax(b.model.get_output_embeddings()(hidden).float(), -1).cpu()
            rows = torch.stack([out.cross_attentions[layer][0, head] for layer, head in b.heads]).float().cpu()
            self._rows = rows if self._rows is None else torch.cat([self._rows, rows], 1)
            last = self._rows.shape[1] - 1
            alignment = alignments(self._rows, [last]).numpy()[0]
            self._candidate = proposal(logprobs, int(logprobs.argmax()), b.word_start, b.eos, self._rows[:, last].mean(0).numpy(), hidden, alignment)
        self.steps += 1
        self._feed = []
        self._logprobs = logprobs


def speech_seq2seq(kind: str) -> bool:
    """Whether transformers loads models of this ``model_type`` as speech encoder-decoders."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES

    return kind in MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES


def model_type(path: str) -> str | None:
    """The ``model_type`` of a local transformers model directory (None: not one)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return None
