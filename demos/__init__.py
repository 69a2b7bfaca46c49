"""Demos and the bundled sample clip (import name ``simulst.demos``)."""

from pathlib import Path

SAMPLE_CLIP = Path(__file__).parent / "samples" / "fleurs-de-000.flac"
"""A German FLEURS test clip (CC BY 4.0, see samples/CREDITS.md)."""
SAMPLE_LANG = "de"
