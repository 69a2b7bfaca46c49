"""Ray for the optional distributed modes (``eval --executor ray``, ``serve --ray``): joined or started here."""

from __future__ import annotations

import os

from simulst.errors import SimulstError
from simulst.build import core_share


def join(actors: int, address: str | None, flag: str, noun: str):
    """Ray, initialized: the cluster at ``address`` (``auto`` or HOST:PORT), else a local one with at least a CPU
    per actor and a small object store. Returns ``(ray, started, threads)``: ``started`` when this call started
    it (the caller shuts it down); ``threads``, the torch threads each actor takes (this machine's cores shared
    among the actors of a local Ray; 0, torch's default, on a cluster). ``flag`` and ``noun`` name the option in
    the errors."""
    try:
        import ray
    except ImportError:
        raise SimulstError(f"{flag} needs Ray: pip install 'simulst[ray]'") from None
    if actors < 1:
        raise SimulstError(f"--{noun} must be at least 1, not {actors}")
    started = not ray.is_initialized()
    if started:
        local = {} if address else {"num_cpus": max(actors, os.cpu_count() or 1), "object_store_memory": 256 << 20}
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False, **local)
    return ray, started, 0 if address else core_share(actors)
