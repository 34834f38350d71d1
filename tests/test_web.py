"""The web page of `emovox serve` in a real headless Chromium (Debian's, driven by Playwright).

Skipped when Playwright or Chromium is missing, unless ``EMOVOX_REQUIRE_BROWSER=1`` (CI sets
it), which turns a missing browser into a failure. Playwright never downloads a browser here:
it drives the system's Chromium (``/usr/bin/chromium``, or ``EMOVOX_CHROMIUM``).
"""

import os
import shutil
from pathlib import Path

import httpx
import pytest

from test_inference import tiny_checkpoint
from test_serve import EXAMPLE, running_server

REQUIRED = os.environ.get("EMOVOX_REQUIRE_BROWSER") == "1"
CHROMIUM = os.environ.get("EMOVOX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The flags that let Chromium run as root in a container with no network but loopback.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         # a fake microphone (a beep) that needs no permission prompt
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def _missing(reason):
    if REQUIRED:
        pytest.fail(f"{reason} (EMOVOX_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None


@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        _missing("playwright is not installed (pip install playwright; no browser download)")
    if not Path(CHROMIUM).exists():
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site(browser, tmp_path_factory, tone_corpus):
    model = tiny_checkpoint(tmp_path_factory, tone_corpus)
    log = tmp_path_factory.mktemp("web") / "server.log"
    with running_server(model, "--max-upload-mb", "20", log=log) as (url, _):
        yield url


@pytest.fixture()
def page(browser, site):
    context = browser.new_context(base_url=site)
    context.grant_permissions(["microphone"], origin=site)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/")
    expect(page.locator("#model-info")).to_contain_text("happy, sad")
    yield page
    context.close()
    assert not errors, errors


def test_upload_the_example_and_see_the_label(page, site):
    expected = httpx.post(site + "/v1/predict",
                          files={"file": ("example.wav", EXAMPLE.read_bytes())}).json()
    page.set_input_files("#file", str(EXAMPLE))
    expect(page.locator("#label")).to_have_text(expected["label"], timeout=30_000)
    expect(page.locator("#file-name")).to_have_text("example.wav")
    expect(page.locator("#bars .bar")).to_have_count(2)
    top = page.locator("#bars .bar.top")
    expect(top).to_have_attribute("data-label", expected["label"])
    percent = f"{100 * expected['probabilities'][expected['label']]:.1f} %"
    expect(top.locator(".value")).to_have_text(percent)
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#timeline-box")).to_be_hidden()  # 5 s: no timeline unless asked


def test_why_shows_the_explanation(page, site):
    expected = httpx.post(site + "/v1/explain",
                          files={"file": ("example.wav", EXAMPLE.read_bytes())},
                          timeout=120).json()
    page.set_input_files("#file", str(EXAMPLE))
    expect(page.locator("#result")).to_be_visible(timeout=30_000)
    expect(page.locator("#why-result")).to_be_hidden()
    page.click("#why")
    expect(page.locator("#why-sentence")).to_have_text(expected["sentence"], timeout=60_000)
    cells = expected["saliency"][expected["primary"]]["values"]
    expect(page.locator("#why-saliency rect.cell")).to_have_count(len(cells))
    expect(page.locator("#why-saliency rect.region")).to_have_count(len(expected["regions"]))
    expect(page.locator("#why-cues tbody tr")).to_have_count(len(expected["cues"]))
    assert len(expected["cues"]) >= 7  # the explain extra is in dev: cues are measured


def test_timeline_chart(page):
    page.check("#timeline-toggle")
    page.set_input_files("#file", str(EXAMPLE))
    expect(page.locator("#timeline-box")).to_be_visible(timeout=30_000)
    expect(page.locator("#timeline svg polyline")).to_have_count(2)  # one line per emotion
    expect(page.locator("#timeline .legend")).to_contain_text("happy")


def test_a_text_file_shows_the_servers_message(page, tmp_path):
    page.set_input_files("#file", str(EXAMPLE))  # a first answer ...
    expect(page.locator("#result")).to_be_visible(timeout=30_000)
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio at all\n" * 20)
    page.set_input_files("#file", str(notes))
    expect(page.locator("#error")).to_have_text(
        "notes.wav: not an audio file or unsupported format", timeout=30_000)
    expect(page.locator("#result")).to_be_hidden()  # ... is not left under the error


def test_record_from_the_microphone(page):
    page.click("#record")
    expect(page.locator("#record")).to_contain_text("Stop", timeout=10_000)
    page.wait_for_timeout(1500)
    page.click("#record")
    expect(page.locator("#file-name")).to_have_text("recording.wav", timeout=30_000)
    expect(page.locator("#record-time")).to_contain_text("s recorded")
    # The fake microphone plays a steady beep, which the voice activity detector may call
    # "silence": either way the recording went through as a WAV file the server could read.
    assert page.locator("#label").text_content() in ("happy", "sad", "silence")
    seconds = float(page.locator("#record-time").inner_text().split()[0])
    assert 1.0 <= seconds <= 5.0
    expect(page.locator("#error")).to_be_hidden()


def test_explain_html_report_opens_with_its_cue_table_and_overlay(browser, tmp_path):
    from emovox.cli import main

    out = tmp_path / "why.html"
    assert main(["explain", str(EXAMPLE), "--format", "html", "-o", str(out)]) == 0
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(out.as_uri())
    expect(page.locator("#cues tbody tr")).to_have_count(13)
    expect(page.locator("#cues")).to_contain_text("f0_mean")
    image = page.locator("#overlay image")
    expect(image).to_have_count(1)
    # the spectrogram is an embedded PNG the browser decoded (its natural size is known)
    size = page.evaluate("""() => new Promise((done) => {
        const img = new Image();
        img.onload = () => done([img.naturalWidth, img.naturalHeight]);
        img.onerror = () => done(null);
        img.src = document.querySelector('#overlay image').getAttribute('href'); })""")
    assert size == [900, 160]
    assert page.locator("#overlay rect.region").count() >= 1
    expect(page.locator("#sentence")).to_contain_text("(")
    assert all(u.startswith(("file:", "data:")) for u in requests)  # nothing from a network
    assert not errors
    page.close()


@pytest.fixture(scope="module")
def vad_site(browser, tmp_path_factory, tone_corpus):
    """A model with a VAD head (the tone corpus, valence = its pitch class, arousal random)."""
    import numpy as np

    from conftest import TINY_MODEL
    from emovox.bundle import save_checkpoint
    from emovox.config import load_recipe
    from emovox.corpora import load_corpus
    from emovox.train import fit
    from emovox.types import Utterance

    rng = np.random.default_rng(0)
    utts = [Utterance(**{**u.to_dict(), "extra": {
        "valence": (4.0 if u.label == "happy" else 2.0) + rng.normal(0, 0.3),
        "arousal": float(rng.uniform(1, 5)), "vad_scale": [1.0, 5.0]}})
        for u in load_corpus("manifest", tone_corpus)]
    config = load_recipe("mll", [*TINY_MODEL, "optim.epochs=3", "loss.vad=1"])
    path = tmp_path_factory.mktemp("vad-model") / "model.pt"
    save_checkpoint(fit(config, utts, [], progress=False), path)
    log = tmp_path_factory.mktemp("web-vad") / "server.log"
    with running_server(path, log=log) as (url, _):
        yield url


def test_a_vad_model_shows_the_valence_arousal_plane(browser, vad_site):
    card = httpx.get(vad_site + "/v1/model").json()
    assert card["dimensions"]["names"] == ["valence", "arousal"]
    assert card["dimensions"]["range"]["valence"] == [1.0, 5.0]
    expected = httpx.post(vad_site + "/v1/predict?timeline=true",
                          files={"file": ("example.wav", EXAMPLE.read_bytes())}).json()
    assert 0 < expected["valence"] < 6 and "dominance" not in expected
    context = browser.new_context(base_url=vad_site)
    page = context.new_page()
    page.goto("/")
    expect(page.locator("#model-info")).to_contain_text("also: valence, arousal")
    page.check("#timeline-toggle")
    page.set_input_files("#file", str(EXAMPLE))
    expect(page.locator("#plane-box")).to_be_visible(timeout=30_000)
    expect(page.locator("#dimensions")).to_have_text(
        f"valence {expected['valence']:.2f} \u00b7 arousal {expected['arousal']:.2f}")
    dot = page.locator("#plane circle.recording")
    expect(dot).to_have_count(1)
    # the dot sits where the valence is on the 1..5 axis (x from 24 to 196 in a 220 box)
    cx = float(dot.get_attribute("cx"))
    assert cx == pytest.approx(24 + 172 * (expected["valence"] - 1) / 4, abs=0.5)
    windows = [s for s in expected["timeline"] if s["speech"]]
    expect(page.locator("#plane circle.window")).to_have_count(len(windows))
    context.close()


def test_an_emotion_model_has_no_plane(page):
    page.set_input_files("#file", str(EXAMPLE))
    expect(page.locator("#result")).to_be_visible(timeout=30_000)
    expect(page.locator("#plane-box")).to_be_hidden()


def test_what_is_said_shows_the_transcript_and_the_fused_label(page, site):
    pytest.importorskip("faster_whisper")  # the text extra is in dev: CI has it
    expected = httpx.post(site + "/v1/predict?with_text=true",
                          files={"file": ("example.wav", EXAMPLE.read_bytes())},
                          timeout=120).json()
    assert expected["transcript"]
    page.check("#text-toggle")
    page.set_input_files("#file", str(EXAMPLE))
    expect(page.locator("#text-box")).to_be_visible(timeout=60_000)
    expect(page.locator("#transcript")).to_have_text(f"\u201c{expected['transcript']}\u201d")
    expect(page.locator("#fused")).to_contain_text(f"voice and words: {expected['fused_label']}")
    expect(page.locator("#label")).to_have_text(expected["label"])  # the audio label stays


def test_audio_alone_shows_no_text_box(page):
    page.set_input_files("#file", str(EXAMPLE))
    expect(page.locator("#result")).to_be_visible(timeout=30_000)
    expect(page.locator("#text-box")).to_be_hidden()
