"""An hour of speech through one session: the per-chunk compute and the memory do not grow with the stream.

The dev long-form stream and the English dev clips form a 5.3-minute cycle, repeated to 63 minutes and
transcribed by the embedded whisper-tiny.en in 1 s chunks (computation-unaware: chunks are fed as fast as the
session takes them). This runs `simulst bench-soak` in a fresh process, so its memory figures are the session's
own; it takes about 16 minutes on two CPU cores.
"""

import json
import subprocess
import sys

import pytest

from tests.conftest import DATA, dev_clip


@pytest.mark.model
def test_an_hour_of_audio_keeps_compute_and_memory_flat(model_cache, tmp_path):
    longform = DATA / "longform" / "libritrans-dev-long.flac"
    clips = [dev_clip(f"en-00{i}") for i in range(5)]
    if not longform.exists():
        pytest.fail(f"dev data missing: {longform}")
    report = tmp_path / "soak.json"
    cmd = [sys.executable, "-m", "simulst.cli", "bench-soak", str(longform), *map(str, clips), "--model", "whisper-tiny.en",
           "--src-lang", "en", "--task", "transcribe", "--minutes", "60", "--json", str(report)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=3 * 3600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(report.read_text())["summary"]
    print(json.dumps(summary, indent=1))
    assert summary["stream_s"] >= 3600 and summary["chunks"] >= 3600
    # the first and last 5 minutes hold the same audio; only the history before them differs
    assert summary["compute_ratio"] <= 1.2, summary
    # resident memory (sampled after every chunk) and the process's peak: the allocator settles during the first
    # half hour (+5% over the first window, measured), then nothing grows (a leak of 20 KB per chunk would show)
    assert summary["rss_last_max_mb"] <= 1.1 * summary["rss_first_max_mb"], summary
    assert summary["peak_last_mb"] <= 1.1 * summary["peak_first_mb"], summary
    assert summary["rss_second_half_max_mb"] <= 1.03 * summary["rss_first_half_max_mb"], summary
    # and the output kept flowing: about as many words per minute as the speech holds (~150), no runaway
    words_per_minute = summary["words"] / (summary["stream_s"] / 60)
    assert 100 <= words_per_minute <= 250, words_per_minute
