"""Progress bars for the long recipes (``train-policy``, ``train-nar``)."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def recipe_bars(console=None):
    """Yields ``bar(name)``: it adds a bar and returns its ``update(done, total, note)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[note]}")]
    with Progress(*columns, console=console, transient=False) as bars:

        def bar(name: str):
            task = bars.add_task(name, total=None, note="")
            return lambda done, total, note: bars.update(task, completed=done, total=total, note=str(note)[:40])

        yield bar
