"""Scoring speech output: offsets and discontinuities as SimulEval defines them for speech targets, and
ASR-BLEU (the spoken output transcribed by the embedded Whisper, then BLEU against the reference)."""

from __future__ import annotations

from statistics import mean

from simulst.events import SpeechOut


def speech_fields(backend, speech: list[SpeechOut], lang: str) -> dict:
    """Instance fields: the planned ``[start_ms, duration_ms]`` of each phrase and the ASR transcript of the track."""
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
    return {"speech": [[s.start_ms, s.duration_ms] for s in speech], "asr": transcript}


def speech_metrics(instances: list[dict]) -> dict[str, float]:
    """Means over instances with speech: SpeechStartOffset, SpeechEndOffset, Discontinuity{Sum,Ave,Num}; ASR_BLEU."""
    from simulst.eval.quality import bleu

    spoken = [i for i in instances if i.get("speech")]
    if not spoken:
        return {}
    gaps = []
    for ins in spoken:
        ends = [start + duration for start, duration in ins["speech"]]
        gaps.append([s - e for (s, _), e in zip(ins["speech"][1:], ends) if s - e > 0])
    return {
        "SpeechStartOffset": float(mean(i["speech"][0][0] for i in spoken)),
        "SpeechEndOffset": float(mean(sum(i["speech"][-1]) - i["source_length"] for i in spoken)),
        "DiscontinuitySum": float(mean(sum(g) for g in gaps)),
        "DiscontinuityAve": float(mean(sum(g) / len(g) if g else 0.0 for g in gaps)),
        "DiscontinuityNum": float(mean(len(g) for g in gaps)),
        "ASR_BLEU": bleu([i["asr"] for i in instances], [i.get("reference", "") for i in instances]),
    }
