"""Named registries filled by entry points (``simulst.policies``, ``simulst.backends``) or a decorator.

Built-ins are declared as entry points in pyproject.toml too, so a third-party policy or backend is one
installed package away, and nothing is imported until it is asked for.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Callable

from simulst.errors import OptionError


class Registry:
    """Name -> class, looked up in decorator registrations first, then in the entry-point group."""

    def __init__(self, group: str, kind: str) -> None:
        self.group, self.kind = group, kind
        self._items: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        def deco(obj: Any) -> Any:
            self._items[name] = obj
            return obj

        return deco

    def names(self) -> list[str]:
        return sorted(set(self._items) | {ep.name for ep in entry_points(group=self.group)})

    def get(self, name: str) -> Any:
        if name not in self._items:
            found = [ep for ep in entry_points(group=self.group) if ep.name == name]
            if not found:
                raise OptionError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
            self._items[name] = found[0].load()
        return self._items[name]


policies = Registry("simulst.policies", "policy")
backends = Registry("simulst.backends", "model backend")
