"""Audio sources and conversion (import name ``simulst.streaming``)."""
