"""Shared fixtures: the test clips in tests/data (tests/data/CREDITS.md) and the embedded Whisper models (loaded
once per run). The tests read nothing outside the project: the development sets are for benchmarks."""

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
FLEURS = DATA / "fleurs" / "fleurs.tsv"
"""Rows of the FLEURS clips below (the development set's format and references)."""
LIBRITRANS = DATA / "libritrans" / "libritrans.tsv"
"""20 LibriTrans rows (English speech, French references): the recipes' tiny training set."""


def clip(name: str) -> Path:
    """A FLEURS clip of the project's test data: ``de-001``, ``en-000``, ...; ``de-000`` is the demo's sample."""
    if name == "de-000":
        from simulst.demos import SAMPLE_CLIP

        return SAMPLE_CLIP
    return DATA / "fleurs" / "audio" / f"fleurs-{name}.flac"


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory):
    """Convert the embedded weights into a fresh cache once per run, so the conversion itself is exercised."""
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("simulst-cache")
    mp.setenv("SIMULST_CACHE", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="session")
def whisper_base(model_cache):
    from simulst import build
    from simulst.models.whisper import WhisperOptions

    return build.backend("whisper", WhisperOptions(model="whisper-base"))


@pytest.fixture(scope="session")
def whisper_float32(whisper_base):
    """whisper-base with the float32 decoder whatever the default (tests of exact token equalities between passes
    of different sizes: their attention sums differ in the last float32 bits, which bfloat16's rounding of the
    next layer's inputs makes visible now and then); the default backend itself where its decoder is float32."""
    return _with_decoder(whisper_base, "float32")


@pytest.fixture(scope="session")
def whisper_bfloat16(whisper_base):
    """whisper-base with the bfloat16 decoder; the default backend itself where the CPU makes that the default."""
    return _with_decoder(whisper_base, "bfloat16")


def _with_decoder(backend, dtype: str):
    from simulst import build
    from simulst.models.whisper import WhisperOptions

    if backend.decoder_dtype == dtype:
        return backend
    return build.backend("whisper", WhisperOptions(model="whisper-base", decoder_dtype=dtype))
