"""Shared fixtures: the dev data beside the checkout and the embedded Whisper models (loaded once per run)."""

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def dev_clip(name: str) -> Path:
    """A clip of ../shared/data/fleurs; a missing data folder fails the test with the reason."""
    path = DATA / "fleurs" / "audio" / f"fleurs-{name}.flac"
    if not path.exists():
        pytest.fail(f"dev data missing: {path} (tests read ../shared/data beside the checkout)")
    return path


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
    of different sizes: a bfloat16 product's last bits follow how many rows it multiplies); the default backend
    itself while its decoder is float32, so the model is not loaded twice."""
    from simulst import build
    from simulst.models.whisper import WhisperOptions

    if whisper_base.options.decoder_dtype == "float32":
        return whisper_base
    return build.backend("whisper", WhisperOptions(model="whisper-base", decoder_dtype="float32"))
