"""Scores of an instances log: quality and latency, overall and per direction; SimulEval's scores.tsv layout."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from statistics import mean

import numpy as np

from simulst.eval import latency, quality
from simulst.eval.speech import speech_metrics
from simulst.eval.stream import long_form, resegment, stream_latency

LATENCY = ["LAAL", "AL", "AP", "DAL", "ATD", "StartOffset", "EndOffset"]
TSV_COLUMNS = ["BLEU", "LAAL", "AL", "AP", "DAL", "ATD"]


def instance_latency(ins: dict) -> dict[str, float]:
    """Every latency metric of one instance, from ``delays`` and (``_CA``) from ``elapsed``."""
    delays, src = ins["delays"], ins["source_length"]
    ref_len = len(ins.get("reference", "").split(" "))
    out: dict[str, float] = {"NumChunks": len(delays)}
    for suffix, stamps in (("", delays), ("_CA", ins.get("elapsed") or [])):
        if len(stamps) != len(delays):
            continue
        out["AL" + suffix] = latency.al(stamps, src, ref_len)
        out["LAAL" + suffix] = latency.laal(stamps, src, ref_len)
        yaal = latency.yaal(stamps, src, ref_len)
        if yaal is not None:
            out["YAAL" + suffix] = yaal
        out["AP" + suffix] = latency.ap(stamps, src, ref_len)
        out["DAL" + suffix] = latency.dal(stamps, src)
        out["StartOffset" + suffix] = latency.start_offset(stamps)
        out["EndOffset" + suffix] = latency.end_offset(stamps, src)
    shown = ins.get("display_delays")
    if shown and len(shown) == len(delays):
        out["DisplayLAAL"] = latency.laal(shown, src, ref_len)
    out["ATD"] = latency.atd(delays, src)
    if ins.get("elapsed") and len(ins["elapsed"]) == len(delays):
        out["ATD_CA"] = latency.atd(delays, src, ins["elapsed"])
    return out


def _resegmented(instances: list[dict]) -> tuple[list[str], list[str], dict[str, float]]:
    """Long-form instances: hypothesis sentences aligned to the reference sentences, StreamLAAL and LongYAAL."""
    hyps, refs, per_stream = [], [], defaultdict(list)
    for ins in instances:
        words = ins["prediction"].split()
        spans = resegment(words, [reference for _, _, reference in ins["segments"]])  # once: it depends on words only
        hyps += [" ".join(words[start:stop]) for start, stop in spans]
        for suffix, stamps in (("", ins["delays"]), ("_CA", ins.get("elapsed"))):
            if stamps:
                for name, value in stream_latency(spans, stamps, ins["segments"], ins["source_length"]).items():
                    per_stream[name + suffix].append(value)
        refs += [reference for _, _, reference in ins["segments"]]
    return hyps, refs, {name: float(mean(values)) for name, values in per_stream.items() if len(values) == len(instances)}


def group_scores(instances: list[dict]) -> dict[str, float]:
    hyps = [i["prediction"] for i in instances]
    refs = [i.get("reference", "") for i in instances]
    stream_metrics: dict[str, float] = {}
    if long_form(instances):
        hyps, refs, stream_metrics = _resegmented(instances)
    tgt_langs = {i.get("tgt_lang") for i in instances}
    transcription = bool(instances) and all(i.get("task") == "transcribe" for i in instances)
    if transcription:  # transcripts are compared case- and punctuation-blind, as for WER
        hyps, refs = [quality.normalize(h) for h in hyps], [quality.normalize(r) for r in refs]
    result: dict[str, float] = {
        "BLEU": quality.bleu(hyps, refs, tgt_langs.pop() if len(tgt_langs) == 1 else None),
        "chrF": quality.chrf(hyps, refs),
    }
    if transcription:
        result["WER"] = quality.wer(hyps, refs)
    per_instance = [instance_latency(i) for i in instances if i["delays"]]
    for name in sorted({k for m in per_instance for k in m}):
        values = [m[name] for m in per_instance if name in m]
        result[name] = float(mean(values))
    if all("erased" in i for i in instances):
        result["NE"] = sum(i["erased"] for i in instances) / max(sum(len(i["prediction"].split()) for i in instances), 1)
        result["Revisions"] = float(mean(i["revisions"] for i in instances)) if instances else 0.0
    if all("guards" in i for i in instances):
        result["Guards"] = float(sum(i["guards"] for i in instances))
    if all("compute_ms" in i for i in instances):
        result["RTF"] = sum(i["compute_ms"] for i in instances) / max(sum(i["source_length"] for i in instances), 1e-9)
    updates = [ms for i in instances for ms in i.get("updates_ms", [])]
    if updates:
        result["UpdateMs"] = float(np.mean(updates))
        result["UpdateMs_p95"] = float(np.percentile(updates, 95))
        result["DecoderSteps"] = sum(i.get("decoder_steps", 0) for i in instances) / len(updates)
        result["EncodeMs"] = sum(i.get("encode_ms", 0.0) for i in instances) / len(updates)
    result.update(stream_metrics)
    result.update(speech_metrics(instances))
    result["Instances"] = len(instances)
    return result


def score(instances: list[dict]) -> dict:
    """``{"overall": {...}, "by_direction": {"de-en": {...}}}``."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for ins in instances:
        if ins.get("src_lang") or ins.get("tgt_lang"):
            groups[f"{ins.get('src_lang') or 'xx'}-{ins.get('tgt_lang') or 'xx'}"].append(ins)
    return {"overall": group_scores(instances), "by_direction": {d: group_scores(g) for d, g in sorted(groups.items())}}


def write_scores(directory: str | Path, scores: dict, computation_aware: bool) -> None:
    """``scores.json`` (everything) and ``scores.tsv`` (SimulEval's columns, rounded to 3 places)."""
    directory = Path(directory)
    (directory / "scores.json").write_text(json.dumps(scores, indent=2) + "\n")
    overall = scores["overall"]
    columns = [c for c in TSV_COLUMNS if c in overall]
    if computation_aware:
        columns += [c + "_CA" for c in TSV_COLUMNS[1:] if c + "_CA" in overall]
    rows = ["\t".join(columns), "\t".join(str(round(overall[c], 3)) for c in columns)]
    (directory / "scores.tsv").write_text("\n".join(rows) + "\n")


def format_scores(scores: dict) -> str:
    """A table: one row per direction and one for all, the main metrics as columns."""
    names = ["BLEU", "chrF", "WER", "LAAL", "LAAL_CA", "YAAL", "AL", "AL_CA", "DAL", "ATD", "StreamLAAL", "StreamLAAL_CA", "LongYAAL", "DisplayLAAL", "NE", "Revisions", "UpdateMs", "UpdateMs_p95", "EncodeMs", "DecoderSteps", "RTF", "Instances"]
    rows = [("all", scores["overall"])] + list(scores["by_direction"].items())
    names = [n for n in names if any(n in r for _, r in rows)]
    lines = ["\t".join(["direction"] + names)]
    for label, values in rows:
        lines.append("\t".join([label] + [f"{values[n]:.3f}" if n in values and n != "Instances" else str(values.get(n, "")) for n in names]))
    return "\n".join(lines)
