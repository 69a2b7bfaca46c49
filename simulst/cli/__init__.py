"""The ``simulst`` command line: one module per command group. Commands parse flags (generated from the options
dataclasses, ``simulst.flags``) into specs and call the library, which builds (``simulst.build``) and runs."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from simulst.errors import SimulstError


def parser() -> argparse.ArgumentParser:
    from simulst.cli import evaluate, serve, train, translate

    top = argparse.ArgumentParser(prog="simulst", description="Simultaneous speech translation: offline models made simultaneous by read/write policies.")
    sub = top.add_subparsers(dest="command", required=True)
    for group in (translate, evaluate, serve, train):
        group.add_commands(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    ns = top.parse_args(argv)
    try:
        return ns.run(ns)
    except SimulstError as exc:
        print(f"simulst: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
