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

from simulst import build, flags
from simulst.events import Commit

PREFIX = "simulst"


class SimulstAgent(SpeechToTextAgent):
    """A SimulEval agent around one simulst session per instance (any backend, policy or cascade)."""

    def __init__(self, args: Namespace) -> None:
        self.backend = build.model(flags.model_spec(args, PREFIX))
        self.spec = flags.session_spec(args, prefix=PREFIX)
        self.session = None
        super().__init__(args)

    @staticmethod
    def add_args(parser: ArgumentParser) -> None:
        flags.add_model(parser, PREFIX)
        flags.add_session(parser, PREFIX)

    def reset(self) -> None:
        super().reset()
        self.session = build.make(self.backend, self.spec)
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
