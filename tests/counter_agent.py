"""A SimulEval agent for tests: after one second of source, writes one word per segment."""

from simuleval.agents import SpeechToTextAgent
from simuleval.agents.actions import ReadAction, WriteAction


class CounterAgent(SpeechToTextAgent):
    def policy(self):
        seconds = len(self.states.source) / max(self.states.source_sample_rate, 1)
        if self.states.source_finished:
            return WriteAction("end of it", finished=True)
        if seconds < 1:
            return ReadAction()
        return WriteAction(f"w{int(seconds * 10)}", finished=False)
