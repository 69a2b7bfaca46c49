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


def browse(url: str, clip: Path, until: str, screenshot: Path, timeout_ms: int, speak: bool = False) -> tuple[str, tuple[int, float]]:
    """The committed text the page shows, and its speech counters (phrases, seconds)."""
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
        page.click("#start")
        page.wait_for_function(f"document.getElementById('committed').textContent.includes({until!r})", timeout=timeout_ms)
        page.click("#stop")
        page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=timeout_ms)
        screenshot.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        text, spoken = page.inner_text("#committed"), (int(page.inner_text("#spoken")), float(page.inner_text("#spokenS")))
        browser.close()
    return text, spoken


def test_page_shows_the_translation_of_the_fake_microphone(tmp_path):
    clip = tmp_path / "clip.wav"
    soundfile.write(clip, np.zeros(16000 * 5), 16000, subtype="PCM_16")
    running = Running(FakeBackend(WORDS, sample_rate=16000))
    try:
        text, spoken = browse(running.url.replace("ws://", "http://"), clip, "Leute.", ARTIFACTS / "browser-fake.png", 30000)
    finally:
        running.stop()
    assert text.strip() == TEXT and spoken == (0, 0.0)
    assert (ARTIFACTS / "browser-fake.png").stat().st_size > 10000


@pytest.mark.model
def test_page_translates_a_german_clip(whisper_base, tmp_path):
    from simulst.streaming.audio import load_audio
    from tests.conftest import dev_clip

    clip = tmp_path / "de.wav"
    soundfile.write(clip, load_audio(dev_clip("de-000")), 16000, subtype="PCM_16")
    running = Running(whisper_base)
    try:
        text, spoken = browse(running.url.replace("ws://", "http://"), clip, "Hong Kong", ARTIFACTS / "browser-de.png", 120000, speak=True)
    finally:
        running.stop()
    assert "Hong Kong" in text
    phrases, seconds = spoken
    # the translation was spoken (how many phrases depends on how the commits fell in time)
    assert phrases >= 1 and seconds >= 0.15 * len(text.split()), (spoken, text)  # speech runs at < 6 words/s
