"""Guards against runaway output, tied to the audio heard and to the text written, not to a decision round.

Before a proposed token is written, ``Guards.check`` looks at the output so far plus the token and may stop the
round: each verdict names a reason (reported as a ``guard`` event) and how many of the last tokens not to write.
Only tokens of the current round can be taken back; committed text is final.

- ``rate``: committed tokens of the buffered audio may not exceed ``rate_headroom + max_rate * seconds``;
- ``loop``: an n-gram (up to 12 tokens) about to be repeated a ``loop_times``-th time in a row (the third);
- ``repeat``: a span of ``echo_tokens`` or more written twice in a row (the second copy goes), or a span of
  ``repeat_tokens`` that already occurs in the recent output (a repeated clause or sentence);
- ``compression``: the round's text makes the recent output compress better than ``max_compression`` (Whisper's
  own test for a failed decode; a paraphrasing loop that repeats no long span exactly): the round writes nothing.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

from simulst.options import SessionOptions


@dataclass(frozen=True)
class Verdict:
    reason: str
    drop: int
    """Tokens at the end of the checked sequence (the candidate included) not to write."""


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def loops(tokens: Sequence[int], times: int = 3, longest: int = 12) -> bool:
    """Whether ``tokens`` end in an n-gram repeated ``times`` times in a row (a decoding loop)."""
    for n in range(1, longest + 1):
        if len(tokens) < n * times:
            break
        tail = list(tokens[-n:])
        if all(list(tokens[-n * (i + 1) : len(tokens) - n * i]) == tail for i in range(1, times)):
            return True
    return False


def echo(tokens: Sequence[int], shortest: int, longest: int = 48) -> int:
    """Length of a span of ``shortest`` to ``longest`` tokens that ``tokens`` end with twice in a row (0: none)."""
    for n in range(shortest, min(longest, len(tokens) // 2) + 1):
        if list(tokens[-n:]) == list(tokens[-2 * n : -n]):
            return n
    return 0


def repeated(tokens: Sequence[int], span: int) -> int:
    """Length of the longest suffix of ``tokens``, ``span`` tokens or more, that already occurs earlier (0: none)."""
    tokens = list(tokens)
    end, best = len(tokens), 0
    tail = tokens[-span:]
    for i in range(end - span):
        if tokens[i : i + span] == tail:
            n = span
            while i - (n - span) - 1 >= 0 and tokens[i - (n - span) - 1] == tokens[end - n - 1]:
                n += 1
            best = max(best, n)
    return best if len(tokens) > span else 0


class Guards:
    """The guards of one decision round: ``earlier`` is the committed output still in view (the text context
    and the tokens of the buffered audio, ``buffered`` of them, over ``seconds`` of audio)."""

    def __init__(self, earlier: Sequence[int], buffered: int, seconds: float, options: SessionOptions, detokenize: Callable[[Sequence[int]], str]) -> None:
        self.earlier, self.options, self.detokenize = list(earlier), options, detokenize
        self.budget = options.rate_headroom + options.max_rate * seconds - buffered
        self.earlier_ratio = compression_ratio(detokenize(self.earlier))

    def check(self, new: Sequence[int]) -> Verdict | None:
        """Whether the round may write ``new`` (its written tokens plus the candidate)."""
        options, tokens = self.options, [*self.earlier, *new]
        if len(new) > self.budget:
            return Verdict("rate", 1)
        if loops(tokens, options.loop_times):
            return Verdict("loop", 1)
        n = echo(tokens, options.echo_tokens)
        if n:
            return Verdict("repeat", min(n, len(new)))
        n = repeated(tokens, options.repeat_tokens)
        if n:
            return Verdict("repeat", min(n, len(new)))
        if self.earlier_ratio <= options.max_compression < compression_ratio(self.detokenize(tokens)):
            return Verdict("compression", len(new))
        return None
