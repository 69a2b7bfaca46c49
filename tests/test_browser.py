"""The browser page in real headless Chromium: a fake microphone plays a clip, the page shows its translation."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.test_server import TEXT, WORDS, Running
from tests.fake import FakeBackend

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def shows(text: str) -> str:
    """A page condition: the committed text includes ``text``."""
    return f"document.getElementById('committed').textContent.includes({text!r})"


def browse(url: str, clip: Path, until: str, screenshot: Path, timeout_ms: int, speak: bool = False, policy: str | None = None):
    """The committed text the page shows, its speech counters (phrases, seconds) and revision counters
    (revisions, erased words)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (setup.sh installs it)")
    from playwright.sync_api import sync_playwright

    flags = [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={clip}%noloop", "--autoplay-policy=no-user-gesture-required",
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
        page = browser.new_page()
        page.goto(url)
        if speak:
            page.check("#speak")
        if policy:
            page.select_option("#policy", policy)
        page.click("#start")
        page.wait_for_function(until, timeout=timeout_ms)
        page.click("#stop")
        page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=timeout_ms)
        screenshot.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        text, spoken = page.inner_text("#committed"), (int(page.inner_text("#spoken")), float(page.inner_text("#spokenS")))
        revised = int(page.inner_text("#revisions")), int(page.inner_text("#erased"))
        browser.close()
    return text, spoken, revised


def test_page_shows_the_translation_of_the_fake_microphone(tmp_path):
    clip = tmp_path / "clip.wav"
    soundfile.write(clip, np.zeros(16000 * 5), 16000, subtype="PCM_16")
    running = Running(FakeBackend(WORDS, sample_rate=16000))
    try:
        text, spoken, _ = browse(running.url.replace("ws://", "http://"), clip, shows("Leute."), ARTIFACTS / "browser-fake.png", 30000)
    finally:
        running.stop()
    assert text.strip() == TEXT and spoken == (0, 0.0)
    assert (ARTIFACTS / "browser-fake.png").stat().st_size > 10000


def test_page_redraws_a_re_translation_and_counts_its_revisions(tmp_path):
    from tests.fake import RoundsBackend

    clip = tmp_path / "clip.wav"
    soundfile.write(clip, np.zeros(16000 * 5), 16000, subtype="PCM_16")
    # each round re-translates; the second and third take words back (mask-k 4 commits nothing before the end)
    running = Running(RoundsBackend(["the cat", "the dog sat", "a dog sat down"], sample_rate=16000))
    try:
        url = running.url.replace("ws://", "http://")
        until = "document.getElementById('partial').textContent.includes('down')"
        text, _, revised = browse(url, clip, until, ARTIFACTS / "browser-retranslate.png", 30000, policy="retranslate")
    finally:
        running.stop()
    assert text.strip() == "a dog sat down"
    assert revised == (2, 4)  # "cat" taken back, then "the dog sat"


@pytest.mark.model
def test_page_translates_a_german_clip(whisper_base, tmp_path):
    from simulst.streaming.audio import load_audio
    from tests.conftest import clip

    wav = tmp_path / "de.wav"
    soundfile.write(wav, load_audio(clip("de-000")), 16000, subtype="PCM_16")
    running = Running(whisper_base)
    try:
        text, spoken, _ = browse(running.url.replace("ws://", "http://"), wav, shows("Hong Kong"), ARTIFACTS / "browser-de.png", 120000, speak=True)
    finally:
        running.stop()
    assert "Hong Kong" in text
    phrases, seconds = spoken
    # the translation was spoken (how many phrases depends on how the commits fell in time)
    assert phrases >= 1 and seconds >= 0.15 * len(text.split()), (spoken, text)  # speech runs at < 6 words/s
