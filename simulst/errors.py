"""Errors that front-ends turn into one clear line and a non-zero exit."""

from __future__ import annotations


class SimulstError(Exception):
    """Base class: a problem the user can fix; the message says how."""

    code: str | None = None
    """The code of the server's ``error`` event, where one kind of error has its own (None: the context's)."""


class AudioError(SimulstError):
    """Audio that cannot be read or used."""


class ModelError(SimulstError):
    """A model that cannot be found, read or run."""


class OptionError(SimulstError):
    """An unknown name or an invalid option value."""
