"""Run simulst models and policies inside SimulEval 1.1.4.

    simuleval --agent-class simulst.eval.simuleval_agent.SimulstAgent --source-type speech --target-type text \\
        --source wavs.txt --target refs.txt --source-segment-size 1000 --simulst-src-lang de --output out

Our options are prefixed ``--simulst-`` (SimulEval has its own ``--tgt-lang``); policy options keep their names
(``--alignatt-threshold-ms``). With ``--source-segment-size`` equal to ``--simulst-chunk-ms`` the decision
rounds, and so the delays, are the same as ``simulst eval``'s.
"""

from __future__ import annotations

from argparse import ArgumentParser, Namespace

import numpy as np
from simuleval.agents import SpeechToTextAgent
from simuleval.agents.actions import ReadAction, WriteAction

from simulst import build, registry
from simulst.events import Commit
from simulst.options import SessionOptions, add_options, from_namespace

PREFIX = "simulst"


class SimulstAgent(SpeechToTextAgent):
    """A SimulEval agent around one simulst Session per instance."""

    def __init__(self, args: Namespace) -> None:
        from simulst.models.whisper import WhisperOptions

        self.backend = build.backend("whisper", from_namespace(WhisperOptions, args, PREFIX))
        self.policy_name = getattr(args, f"{PREFIX}.policy")
        self.policy_options = from_namespace(registry.policies.get(self.policy_name).Options, args, self.policy_name)
        self.options = from_namespace(SessionOptions, args, PREFIX)
        self.session = None
        super().__init__(args)

    @staticmethod
    def add_args(parser: ArgumentParser) -> None:
        from simulst.models.whisper import WhisperOptions

        parser.add_argument(f"--{PREFIX}-policy", dest=f"{PREFIX}.policy", default="alignatt", choices=registry.policies.names())
        add_options(parser, WhisperOptions, PREFIX)
        add_options(parser, SessionOptions, PREFIX)
        for name in registry.policies.names():
            add_options(parser, registry.policies.get(name).Options, name)

    def reset(self) -> None:
        super().reset()
        self.session = build.session(self.backend, build.policy(self.policy_name, self.policy_options), self.options)
        self.fed = 0

    def policy(self) -> ReadAction | WriteAction:
        from simulst.streaming.audio import resample

        states = self.states
        new = np.asarray(states.source[self.fed :], dtype=np.float32)
        self.fed = len(states.source)
        if len(new):
            self.session.feed_audio(resample(new, states.source_sample_rate, self.backend.sample_rate))
        if states.source_finished:
            self.session.feed_eof()
        text = "".join(e.text for e in self.session.events() if isinstance(e, Commit)).strip()
        if text or states.source_finished:
            return WriteAction(text, finished=states.source_finished)
        return ReadAction()
