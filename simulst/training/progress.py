"""Progress of the long recipes (``train-policy``, ``train-nar``): bars on a terminal, timed lines in a log."""

from __future__ import annotations

import time
from contextlib import contextmanager

LINE_EVERY_S = 30.0
"""Where the console is not a terminal (a log file), a bar prints a line at most this often, and when done."""


@contextmanager
def recipe_bars(console=None):
    """Yields ``bar(name)``: it adds a bar and returns its ``update(done, total, note)``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield lambda name: _lines(console, name)
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[note]}")]
    with Progress(*columns, console=console, transient=False) as bars:

        def bar(name: str):
            task = bars.add_task(name, total=None, note="")
            return lambda done, total, note: bars.update(task, completed=done, total=total, note=str(note)[:40])

        yield bar


def _lines(console, name: str):
    """A bar as plain lines: ``name done/total elapsed, eta  note``."""
    started = time.perf_counter()
    last = [float("-inf")]

    def update(done: int, total: int, note) -> None:
        now = time.perf_counter() - started
        if done < total and now - last[0] < LINE_EVERY_S:
            return
        last[0] = now
        eta = f", eta {now / done * (total - done):.0f}s" if 0 < done < total else ""
        console.print(f"{name} {done}/{total} {now:.0f}s{eta}  {note}", markup=False, highlight=False, soft_wrap=True)

    return update
