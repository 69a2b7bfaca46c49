"""Training beside the runtime: what makes the shipped heads, and nothing inference needs.

- ``teacher`` and ``timing``: the frozen model's teacher-forced features and word times, from the streaming
  decoder's own pass (``WhisperBackend.forced``, ``models.whisper.proposals``, the policy's ``view_features``);
- ``policy``: the learned policies' recipe (``simulst train-policy``), ``losses``: their losses;
- ``nar``: the non-autoregressive CTC head's recipe (``simulst train-nar``);
- ``synth``: synthetic training speech; ``progress``: the recipes' progress bars.

Heads are written with ``simulst.cards``; the runtime (policies, backends, sessions) imports nothing from here.
"""
