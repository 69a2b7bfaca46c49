"""Scoring speech output: offsets, ATD and discontinuities as SimulEval defines them for speech targets, and
ASR-BLEU (the spoken output transcribed by the embedded Whisper, then BLEU against the reference)."""

from __future__ import annotations

from statistics import mean

from simulst.events import SpeechOut


def speech_fields(backend, speech: list[SpeechOut], lang: str) -> dict:
    """Instance fields: per phrase its planned ``[start_ms, duration_ms]`` (``intervals``), the source time and
    computation-aware time it was emitted at (``delays``, ``elapsed``) and its ``durations``; the ASR transcript."""
    from simulst.build import policy, session
    from simulst.options import SessionOptions
    from simulst.streaming.audio import resample
    from simulst.streaming.speech import render

    track, rate = render(speech)
    transcript = ""
    if len(track):
        asr = session(backend, policy("offline"), SessionOptions(src_lang=lang, task="transcribe"))
        asr.feed_audio(resample(track, rate, backend.sample_rate))
        asr.feed_eof()
        transcript = list(asr.events())[-1].text
    return {
        "speech": {
            "intervals": [[s.start_ms, s.duration_ms] for s in speech], "delays": [s.source_ms for s in speech],
            "elapsed": [s.elapsed_ms for s in speech], "durations": [s.duration_ms for s in speech],
        },
        "asr": transcript,
    }


def speech_metrics(instances: list[dict]) -> dict[str, float]:
    """Means over instances with speech: SpeechStartOffset, SpeechEndOffset, SpeechATD(_CA),
    Discontinuity{Sum,Ave,Num}; ASR_BLEU over all instances."""
    from simulst.eval.latency import atd
    from simulst.eval.quality import bleu

    spoken = [i for i in instances if i.get("speech", {}).get("intervals")]
    if not spoken:
        return {}
    gaps = []
    for ins in spoken:
        intervals = ins["speech"]["intervals"]
        ends = [start + duration for start, duration in intervals]
        gaps.append([s - e for (s, _), e in zip(intervals[1:], ends) if s - e > 0])

    def speech_atd(ins: dict, aware: bool) -> float:
        s = ins["speech"]
        return atd(s["delays"], ins["source_length"], s["elapsed"] if aware else None, durations=s["durations"])

    return {
        "SpeechStartOffset": float(mean(i["speech"]["intervals"][0][0] for i in spoken)),
        "SpeechEndOffset": float(mean(sum(i["speech"]["intervals"][-1]) - i["source_length"] for i in spoken)),
        "SpeechATD": float(mean(speech_atd(i, False) for i in spoken)),
        "SpeechATD_CA": float(mean(speech_atd(i, True) for i in spoken)),
        "DiscontinuitySum": float(mean(sum(g) for g in gaps)),
        "DiscontinuityAve": float(mean(sum(g) / len(g) if g else 0.0 for g in gaps)),
        "DiscontinuityNum": float(mean(len(g) for g in gaps)),
        "ASR_BLEU": bleu([i["asr"] for i in instances], [i.get("reference", "") for i in instances]),
    }
