"""Running data rows through sessions (the same Session the CLI uses) into an instances log and scores."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from simulst.errors import ModelError, OptionError, SimulstError
from simulst.events import SpeechOut
from simulst.eval.data import Row
from simulst.eval.instances import make_instance
from simulst.eval.scores import score, write_scores
from simulst.options import SessionOptions
from simulst.session import SessionFactory


def _row_options(row: Row, options: SessionOptions) -> SessionOptions:
    task = options.task
    tgt = row.tgt_lang or options.tgt_lang
    if task == "translate" and row.src_lang and row.src_lang == tgt:
        task = "transcribe"
    return dataclasses.replace(options, src_lang=row.src_lang or options.src_lang, tgt_lang=tgt, task=task)


def _segments(row: Row, task: str) -> dict:
    """A stream's sentences, with the reference the task is scored against."""
    if not row.segments:
        return {}
    return {"segments": [[offset, duration, source if task == "transcribe" else reference] for offset, duration, source, reference in row.segments]}


def evaluate(
    rows: list[Row],
    backend,
    make_session: SessionFactory,
    options: SessionOptions,
    output: str | Path,
    computation_aware: bool = False,
    progress: TextIO | None = sys.stderr,
) -> dict:
    """Run every row ``make_session`` can take, write ``instances.log``, ``scores.json``, ``scores.tsv``; return the scores.

    ``make_session(options)`` builds a session (direct or cascade) for one row, or raises for a direction it
    cannot do; ``backend`` gives the sample rate."""
    runnable, skipped = [], {}
    for row in rows:
        reason = refusal(row, make_session, options)
        if reason is None:
            runnable.append(row)
        else:
            skipped.setdefault(row.direction, reason)
    if not runnable:
        raise SimulstError("no row can be run: " + "; ".join(f"{d}: {why}" for d, why in skipped.items()))
    for direction, why in skipped.items():
        print(f"simulst eval: skipping {direction} rows: {why}", file=progress or sys.stderr)
    instances = []
    started = time.perf_counter()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    with (output / "instances.log").open("w", encoding="utf-8") as log:
        for index, row in enumerate(runnable):
            instance = run_row(row, index, backend, make_session, options)
            log.write(json.dumps(instance, ensure_ascii=False) + "\n")
            log.flush()
            instances.append(instance)
            if progress:
                show_progress(progress, index + 1, len(runnable), started, instance)
    return finish(instances, output, computation_aware, skipped)


def refusal(row: Row, make_session: SessionFactory, options: SessionOptions) -> str | None:
    """Why no session can take ``row`` (a direction the model cannot do), or None."""
    try:
        make_session(_row_options(row, options)).close()
    except (OptionError, ModelError) as exc:
        return str(exc)
    return None


def run_row(row: Row, index: int, backend, make_session: SessionFactory, options: SessionOptions) -> dict:
    """One row through a fresh session: its instance (the SimulEval-style record of ``instances.log``)."""
    from simulst.streaming.audio import load_audio

    row_options = _row_options(row, options)
    audio = load_audio(row.audio, backend.sample_rate)
    session = make_session(row_options)
    session.feed_audio(audio)
    session.feed_eof()
    events = list(session.events())
    speech = [e for e in events if isinstance(e, SpeechOut)]
    extra = {}
    if speech:
        from simulst.eval.speech import speech_fields

        target = row_options.tgt_lang if row_options.task == "translate" else row_options.src_lang
        extra = speech_fields(backend, speech, target)
    return make_instance(
        index,
        events,
        str(row.audio),
        len(audio) * 1000 / backend.sample_rate,
        row.source if row_options.task == "transcribe" else row.reference,
        id=row.id,
        src_lang=row_options.src_lang,
        tgt_lang=row_options.src_lang if row_options.task == "transcribe" else row_options.tgt_lang,
        task=row_options.task,
        compute_ms=session.compute_s * 1000,
        updates_ms=[round(ms, 1) for ms in session.updates_ms],
        decoder_steps=session.decoder_steps,
        encode_ms=round(session.encode_ms, 1),
        **_segments(row, row_options.task),
        **extra,
    )


def show_progress(progress: TextIO, done: int, total: int, started: float, instance: dict) -> None:
    spent = time.perf_counter() - started
    eta = spent / done * (total - done)
    print(f"[{done}/{total}] {instance['id']}  {spent:.0f}s, eta {eta:.0f}s  {instance['prediction'][:70]}", file=progress, flush=True)


def finish(instances: list[dict], output: str | Path, computation_aware: bool, skipped: dict, failed: dict | None = None) -> dict:
    """Score the instances and write ``scores.json`` and ``scores.tsv`` (with the skipped directions and the
    failed rows, if any)."""
    scores = score(instances)
    if skipped:
        scores["skipped"] = skipped
    if failed:
        scores["failed"] = failed
    write_scores(output, scores, computation_aware)
    return scores
