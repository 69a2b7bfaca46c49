"""Model backends (import name ``simulst.models``); heavy imports happen when a backend is built."""
