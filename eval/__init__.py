"""Evaluation: latency and quality scorers over instances logs (import name ``simulst.eval``)."""
