"""Errors that front-ends turn into one clear line and a non-zero exit."""


class SimulstError(Exception):
    """Base class: a problem the user can fix; the message says how."""


class AudioError(SimulstError):
    """Audio that cannot be read or used."""


class ModelError(SimulstError):
    """A model that cannot be found, read or run."""


class OptionError(SimulstError):
    """An unknown name or an invalid option value."""
