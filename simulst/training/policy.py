"""Training a learned policy's head on cached teacher-forced features (``simulst train-policy``)."""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulst.options import Options, opt
from simulst.policies.learned import FEATURES, SCALARS, head_net, load_head


@dataclass
class Samples:
    """Every (truncation, token) sample of the cached utterances, flattened."""

    hidden: np.ndarray  # samples x hidden (float16)
    scalars: np.ndarray  # samples x len(SCALARS)
    full: np.ndarray  # log p(y_t | y_<t, full audio)
    partial: np.ndarray  # log p(y_t | y_<t, audio up to the truncation)
    utterance: np.ndarray  # index of the utterance
    token: np.ndarray  # index of the target token in its utterance
    cut_ms: np.ndarray  # the truncation
    pairs: np.ndarray  # (i, j): the same token at consecutive truncations, i the shorter
    sources: list[dict] = field(default_factory=list)
    """Per utterance: ``source_end_ms``, ``target_word``, ``duration_ms`` (what a text policy reads)."""

    def __len__(self) -> int:
        return len(self.full)


def load_samples(paths: list[Path], margin: int = 4) -> Samples:
    """Flatten cached utterances. At each truncation only the tokens up to ``margin`` past the first one the
    rest of the audio would change (gain > 0.5 nat) are kept: a streaming policy is asked about the next token
    after what it wrote, so tokens far ahead of the audio teach it nothing."""
    hidden, values, full, partial, utterance, token, cut_ms, pairs, sources = [], [], [], [], [], [], [], [], []
    count = 0
    for u, path in enumerate(paths):
        with np.load(path) as npz:
            data = {key: npz[key] for key in npz.files}  # each npz access reads the array: read once
        sources.append({k: data[k] for k in ("source_end_ms", "target_word", "duration_ms")})
        gain = data["full"][None] - data["partial"]
        previous = 0  # tokens kept at the previous truncation, numbered from ``count - previous``
        for c in range(len(data["partial"])):
            unsure = np.nonzero(gain[c] > 0.5)[0]
            keep = min(len(gain[c]), (int(unsure[0]) if len(unsure) else len(gain[c])) + margin)
            hidden.append(data["hidden"][c, :keep])
            values.append(data["scalars"][c, :keep])
            full.append(data["full"][:keep])
            partial.append(data["partial"][c, :keep])
            utterance.append(np.full(keep, u))
            token.append(np.arange(keep))
            cut_ms.append(np.full(keep, data["cuts_ms"][c]))
            same = np.arange(min(previous, keep))
            pairs.append(np.stack([count - previous + same, count + same], 1))
            previous, count = keep, count + keep
    joined = lambda parts, dtype, shape=(-1,): np.concatenate(parts).astype(dtype).reshape(shape) if parts else np.zeros(0, dtype).reshape(shape)
    dim = hidden[0].shape[-1] if hidden else 1
    return Samples(
        joined(hidden, np.float16, (-1, dim)),
        joined(values, np.float32, (-1, len(SCALARS))),
        joined(full, np.float32),
        joined(partial, np.float32),
        joined(utterance, np.int64),
        joined(token, np.int64),
        joined(cut_ms, np.float32),
        joined(pairs, np.int64, (-1, 2)),
        sources,
    )


def train_head(samples: Samples, loss_fn, seed: int = 0, epochs: int = 12, batch: int = 64, lr: float = 2e-3, valid: float = 0.1, progress=None, start=None):
    """Train a head with ``loss_fn(logits, sample_indices, pairs)``; a batch is every sample of ``batch``
    utterances (so pairs of the same token stay together); 10% of the utterances are held out. ``start``: a head
    network to fine-tune (a copy; it keeps its scalar standardization) instead of a random one.

    Returns the network and a report (losses per epoch, on the training and held-out utterances)."""
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    utterances = sorted(set(samples.utterance.tolist()))
    held = sorted(rng.sample(utterances, max(1, int(len(utterances) * valid)))) if len(utterances) > 1 else []
    train = [u for u in utterances if u not in set(held)]
    members = {u: np.nonzero(samples.utterance == u)[0] for u in utterances}
    pairs_of = {u: [] for u in utterances}
    for i, j in samples.pairs.tolist():
        pairs_of[int(samples.utterance[i])].append((i, j))
    hidden, values = torch.from_numpy(samples.hidden), torch.from_numpy(samples.scalars)
    train_idx = np.concatenate([members[u] for u in train])
    if start is not None:
        net = copy.deepcopy(start).train()
    else:
        net = head_net(samples.hidden.shape[1])
        net.scalar_mean.copy_(values[train_idx].mean(0))
        net.scalar_std.copy_(values[train_idx].std(0).clamp(min=1e-3))
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)

    def loss_of(group: list[int]):
        idx = np.concatenate([members[u] for u in group])
        local = {int(i): k for k, i in enumerate(idx)}
        pairs = torch.tensor([(local[i], local[j]) for u in group for i, j in pairs_of[u]], dtype=torch.long).reshape(-1, 2)
        return loss_fn(net(hidden[idx].float(), values[idx]), torch.from_numpy(idx), pairs), len(idx)

    started = time.perf_counter()
    report = {"utterances_train": len(train), "utterances_valid": len(held), "samples_train": int(len(train_idx)), "epochs": []}
    for epoch in range(epochs):
        net.train()
        rng.shuffle(train)
        total = count = 0
        for start in range(0, len(train), batch):
            loss, n = loss_of(train[start : start + batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * n, count + n
        entry = {"epoch": epoch + 1, "train_loss": total / max(count, 1), "seconds": round(time.perf_counter() - started, 1)}
        if held:
            net.eval()
            with torch.no_grad():
                entry["valid_loss"] = loss_of(held)[0].item()
        report["epochs"].append(entry)
        if progress:
            progress(epoch + 1, epochs, entry)
    return net.eval(), report


def write_card(net, path: Path, policy: str, backend, data: dict, training: dict, seed: int, threshold: float, attention_ms: float) -> Path:
    card = {
        "policy": policy,
        "model": backend.identity,
        "numerics": backend.numerics,
        "features": FEATURES,
        "scalars": SCALARS,
        "hidden_dim": int(net.hidden.in_features),
        "width": int(net.hidden.out_features),
        "seed": seed,
        "threshold": threshold,
        **({"attention_ms": attention_ms} if attention_ms else {}),
        "data": data,
        "training": training,
    }
    from simulst.cards import save

    return save(net, card, path)


@dataclass(frozen=True)
class Selection(Options):
    """Which rows of the training data a recipe takes."""

    seed: int = opt(0, "seed of the data draw, the held-out split and the head's initialization")
    max_s: float = opt(20.0, "leave out training utterances longer than this (seconds)", min=1)
    per_language: int | None = opt(None, "at most this many utterances in each source language, drawn with --seed (English against the rest)", min=1)
    languages: str | None = opt(None, "only rows in these source languages, comma-separated (e.g. de,es,fr,it,pt,en)")

    def wanted(self, language: str | None) -> bool:
        """Whether rows in ``language`` are trained on (all languages without ``languages``)."""
        return self.languages is None or language in self.languages.split(",")

    def cap(self, language: str | None) -> int | None:
        """At most this many utterances in ``language`` (None: all)."""
        return self.per_language

    def arrange(self, picked: list) -> list:
        """The picked ``(row, session options, seconds)`` a recipe trains on, in the order it computes them."""
        return picked


@dataclass(frozen=True)
class TrainOptions(Selection):
    """Training a policy head (simulst train-policy)."""

    synthetic: int = opt(0, "synthetic utterances per language: de, es, it, pt (fortunes), fr (the data's French side), en (Piper)", min=0)
    step_ms: int = opt(400, "truncation points every this many ms of each utterance", min=1)
    most_cuts: int | None = opt(
        None, "at most this many truncation points an utterance, spread evenly (the feature pass then costs in "
        "proportion to the audio, not its square)", min=2,
    )
    resume: float | None = opt(
        None, "also train on each utterance as a session holds it after trimming its history: from the first word "
        "the model starts after this fraction of it (e.g. 0.5), the model's words before it as its text context", min=0, max=1,
    )
    epochs: int = opt(12, "passes over the cached samples", min=1)
    init: str | None = opt(
        None, "start from this head (a shipped name, e.g. reina-cv-whisper-base, or the path of a NAME.json card; a REINA "
        "or DAR head for the same model) instead of a random one: fine-tunes it on this data with this loss",
    )
    threshold: float = opt(0.5, "the head's default write threshold, written into its card (chosen on dev rows after training)", min=0, max=1)
    attention_ms: float = opt(0, "the head's default attention veto (READ while the token attends this last audio; 0: none), written into its card", min=0)
    alpha: float = opt(0.5, "cost of reading, in nats: write when the rest of the audio would add less to the token", min=0)
    beta: float = opt(0.25, "entropy weight: the softness of the trained write probability", min=0)
    monotonic: float = opt(1.0, "weight of the penalty on write probabilities that fall as more audio is read", min=0)
    gamma: float = opt(1.0, "dar: weight of the decision-attentive regularizer (0: REINA's loss alone)", min=0)
    text_k: int = opt(3, "dar: k of the text wait-k policy on the source transcript's words", min=1)
    limit: int | None = opt(None, "only the first N rows of the data (a quick run)", min=1)


def row_options(row):
    """The session options a training row is decoded with: X->en translation or English transcription."""
    from simulst.options import SessionOptions

    if row.src_lang == "en":
        return SessionOptions(src_lang="en", task="transcribe")
    if row.src_lang and row.tgt_lang in (None, "en"):
        return SessionOptions(src_lang=row.src_lang, task="translate")
    return None


def training_items(rows, options: Selection, backend) -> tuple[list[tuple[str, Path, object]], dict[str, dict], dict[str, int]]:
    """``(item id, audio, session options)`` of the rows a recipe trains on: X->en or English rows of at most
    ``max_s`` seconds in the ``languages`` asked, at most ``options.cap(language)`` of each (drawn with ``seed``),
    in ``options.arrange``'s order; what they are by source (direction, real or synthetic: utterances, hours,
    licences), for the head's card; and the count of rows left out in each language the model does not know."""
    import soundfile

    picked, unknown, taken = [], {}, {}
    order = list(rows)
    if options.per_language or options.cap("en"):
        random.Random(options.seed).shuffle(order)
    for row in order:
        session = row_options(row)
        if session is None or not options.wanted(row.src_lang) or taken.get(row.src_lang, 0) == options.cap(row.src_lang):
            continue
        if not backend.knows(session):
            unknown[row.src_lang] = unknown.get(row.src_lang, 0) + 1
            continue
        seconds = soundfile.info(str(row.audio)).duration
        if seconds <= options.max_s:
            picked.append((row, session, seconds))
            taken[row.src_lang] = taken.get(row.src_lang, 0) + 1
    items, sources = [], {}
    for row, session, seconds in options.arrange(picked):
        items.append((f"{row.id}:{row.audio}", row.audio, session))
        synthetic = "synth-" in str(row.audio)
        target = "en" if session.task == "translate" else session.src_lang
        source = sources.setdefault(f"{session.src_lang}-{target} {'synthetic' if synthetic else 'real'}", {"utterances": 0, "hours": 0.0, "licences": []})
        source["utterances"] += 1
        source["hours"] = round(source["hours"] + seconds / 3600, 4)
        licence = "synthetic speech (docs/policies.md)" if synthetic else row.licence or "see the data file"
        if licence not in source["licences"]:
            source["licences"].append(licence)
    return items, sources, unknown


def train_policy(kind: str, data: list[str], output: str | Path, options: TrainOptions, backend, console=None) -> Path:
    """The whole recipe: synthetic speech, cached features, training; returns the head's card path."""
    from simulst.errors import SimulstError
    from simulst.eval.data import read_tsv
    from simulst.training.progress import recipe_bars
    from simulst.training.synth import synthesize, training_texts
    from simulst.training.teacher import cache_features

    output = Path(output)
    start = load_head(options.init) if options.init else None
    if start:
        start.check_backend(backend)
    rows = [r for path in data for r in read_tsv(path)]
    rows = rows[: options.limit] if options.limit else rows
    started = time.perf_counter()
    with recipe_bars(console) as bar:
        synthetic = []
        if options.synthetic:
            texts = training_texts(rows, options.synthetic, options.seed)
            synthetic = synthesize(texts, output / "synthetic", options.seed, bar("synthetic speech"))
        items, sources, unknown = training_items(rows + synthetic, options, backend)
        if not items:
            raise SimulstError("no training rows: give X->en or English rows of at most --max-s seconds, in languages the model knows")
        paths = cache_features(backend, items, output / "features", options.step_ms, bar("features (frozen model)"), options.most_cuts)
        resumed = [] if options.resume is None else cache_features(
            backend, items, output / "features", options.step_ms, bar("features after a trim"), options.most_cuts, options.resume
        )
        samples = load_samples(paths + resumed)
        if not len(samples):
            raise SimulstError("the model wrote nothing for any training row")
        loss_fn = losses[kind](samples, options)
        train_bar = bar("training")
        net, report = train_head(
            samples, loss_fn, options.seed, options.epochs, progress=lambda d, t, e: train_bar(d, t, f"loss {e['train_loss']:.4f}"),
            start=start.net if start else None,
        )
    data_card = {
        "files": [str(p) for p in data], "utterances": len(paths), "resumed": len(resumed), "by_source": sources, "left_out_languages": unknown,
        "synthetic_per_language": options.synthetic, "samples": len(samples),
    }
    skip = {"synthetic", "seed", "threshold", "attention_ms", "limit"} | ({"gamma", "text_k"} if kind != "dar" else set())
    training = {**{k: v for k, v in vars(options).items() if k not in skip}, "report": report, "minutes": (time.perf_counter() - started) / 60}
    name = f"{kind}-{Path(backend.options.model).name}"
    return write_card(net, output / name, kind, backend, data_card, training, options.seed, options.threshold, options.attention_ms)


def _reina(samples: Samples, options: TrainOptions):
    import torch

    from simulst.training.losses import information_gain, reina_loss

    gain = information_gain(torch.from_numpy(samples.full), torch.from_numpy(samples.partial))
    return lambda logits, idx, pairs: reina_loss(logits, gain[idx], options.alpha, options.beta, pairs, options.monotonic)


def _dar(samples: Samples, options: TrainOptions):
    """REINA's loss plus ``gamma`` times the first-write NLL of the text wait-k policy's decisions."""
    import torch

    from simulst.training.losses import first_write_nll, text_waitk_times

    reina = _reina(samples, options)
    text_ms = np.zeros(len(samples), np.float32)
    for u, source in enumerate(samples.sources):
        times = text_waitk_times(source["source_end_ms"], source["target_word"], options.text_k, float(source["duration_ms"]))
        mine = samples.utterance == u
        text_ms[mine] = times[samples.token[mine]]
    key = samples.utterance * 10_000 + samples.token

    def loss(logits, idx, pairs):
        value = reina(logits, idx, pairs)
        if options.gamma == 0:
            return value
        i = idx.numpy()
        order = np.lexsort((samples.cut_ms[i], key[i]))
        _, chain = np.unique(key[i][order], return_inverse=True)
        written = samples.cut_ms[i][order] >= text_ms[i][order]
        lengths = np.bincount(chain)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        target = np.array([np.argmax(written[s : s + n]) if written[s : s + n].any() else n for s, n in zip(starts, lengths)])
        nll = first_write_nll(logits[torch.from_numpy(order)], torch.from_numpy(chain), torch.from_numpy(target))
        return value + options.gamma * nll

    return loss


losses = {"reina": _reina, "dar": _dar}
"""Policy kind -> ``loss(samples, options)`` giving ``fn(logits, sample_indices, pairs)``."""
