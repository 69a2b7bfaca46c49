"""simulst: simultaneous speech translation with pluggable read/write policies.

Heavy modules (torch, transformers) load only when a model is built.
"""

from simulst.errors import SimulstError
from simulst.events import Commit, End, Event, Partial
from simulst.options import SessionOptions

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
