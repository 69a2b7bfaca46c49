"""simulst: simultaneous speech translation with pluggable read/write policies.

Heavy modules (torch, transformers) load only when a model is built.
"""

import os

# oneDNN (torch's CPU kernels) keeps a compiled primitive per input shape, up to 1024 of them. A stream's tensor
# shapes change every round (they follow the buffered audio), so that cache only fills memory: resident memory
# climbed by ~450 MB over 7 minutes of streaming, then stayed flat with 16. Read when torch runs its first kernel;
# a value in the environment wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

from simulst.errors import SimulstError  # noqa: E402
from simulst.events import Commit, End, Event, Partial  # noqa: E402
from simulst.options import SessionOptions  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Commit", "End", "Event", "Partial", "Session", "SessionOptions", "SimulstError", "translate_stream"]


def __getattr__(name: str):
    if name == "Session":
        from simulst.session import Session

        return Session
    if name == "translate_stream":
        from simulst.api import translate_stream

        return translate_stream
    raise AttributeError(name)
