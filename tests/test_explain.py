"""`emovox explain`: saliency over the file's time, the gradient's exactness, the record,
bad inputs."""

import json

import numpy as np
import pytest
import soundfile as sf

from emovox import explain
from emovox.cli import main
from emovox.errors import EmovoxError
from emovox.explain import Cue, complement, describe, linear_head_attribution, regions_of
from emovox.inference import Recognizer, example_path
from test_inference import SR, bad_inputs, gap, tiny_checkpoint, voice


@pytest.fixture(scope="module")
def default():
    return Recognizer.default(threads=1)


def test_occlusion_finds_the_stretch_the_score_depends_on():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.normal(size=3 * SR)).astype(np.float32)

    def score(signal: np.ndarray) -> float:  # "the model" hears 1.0-1.4 s only
        part = signal[int(1.0 * SR) : int(1.4 * SR)]
        return float(np.sqrt(np.mean(part ** 2)))

    sal = explain.occlusion(score, x, SR, window=0.3, hop=0.1)
    times, values = np.array(sal.times), np.array(sal.values)
    assert len(times) == 30 and times[0] == pytest.approx(0.05)
    assert 1.0 < times[int(np.argmax(values))] < 1.4
    # a cell no silenced stretch reaching into 1.0-1.4 s covers gets nothing
    far = (times < 0.7) | (times > 1.7)
    assert np.all(values[far] == 0.0) and np.all(values[(times > 1.0) & (times < 1.4)] > 0)


def test_regions_are_the_top_cells_joined_and_complement_is_the_rest():
    values = np.array([0, 5, 6, 0, 0, 0, 7, 0, 0, 0], dtype=float)
    assert regions_of(values, 0.1, 0.3) == ((0.1, 0.3), (0.6, 0.7))
    # only cells above zero, even when the share asks for more
    assert regions_of(np.array([0, 1.0, 0, 0]), 0.5, 0.75) == ((0.5, 1.0),)
    # too few positive cells: the most sensitive either way fill up the least length, and
    # silence (0: silencing it changed nothing) comes last
    assert regions_of(np.array([0, 0, -1, -3, -2, 0, 0.5]), 0.1, 0.2, least=0.3) == (
        (0.3, 0.5), (0.6, 0.7))
    assert regions_of(np.array([0, 0, -1, -3, -2, 0]), 0.1, 0.2) == ((0.3, 0.4),)
    assert complement(((0.1, 0.3), (0.6, 0.7)), 1.0) == ((0.0, 0.1), (0.3, 0.6), (0.7, 1.0))
    assert complement((), 2.0) == ((0.0, 2.0),)


@pytest.mark.parametrize("name", ["default", "edge"])
def test_gradient_attributions_add_up_to_the_score_change(name):
    # completeness: integrated gradients from the baseline frame sum to the explained score
    # (logit minus mean logit) of the recording minus that of the baseline, both read off the
    # model's own classify path (log-probabilities times the temperature)
    rec = Recognizer.load(name, threads=1)
    model = rec.model
    feats = rec.encode([voice(180, 2.0, seed=3)])[0]
    target = 2
    attribution = linear_head_attribution(model, feats, target)
    assert attribution.shape == (feats.shape[-2],)

    def score(frames: np.ndarray) -> float:
        p = model.classify([frames.astype(np.float32)], rounded=True).probabilities[0]
        z = np.log(p) * model.network.temperature
        return float(z[target] - z.mean())

    expected = score(feats) - score(explain.baseline_frames(model, feats))
    assert abs(expected) > 0.1
    assert attribution.sum() == pytest.approx(expected, rel=2e-3, abs=2e-3)
    # and it is not spread evenly: frames differ in what they contribute
    assert attribution.std() > 0.01 * abs(attribution).mean()


def test_saliency_sits_where_the_voice_is_in_the_files_time(default, tmp_path):
    path = tmp_path / "late.wav"
    sf.write(path, np.concatenate([gap(1.5), voice(220, 1.5, seed=1)]), SR)
    e = default.explain_file(path, cues=False)
    assert set(e.saliency) == {"occlusion", "gradient"} and e.notes == ()
    for method in ("occlusion", "gradient"):
        times = np.array(e.saliency[method].times)
        values = np.abs(np.array(e.saliency[method].values))
        assert times[-1] == pytest.approx(2.95)
        # the silent first 1.4 s hold (almost) nothing; the voice holds the rest
        assert values[times < 1.4].sum() < 0.05 * values[times > 1.5].sum()
    # occlusion smears by its window (0.3 s): a stretch from 1.3 s silences the voice's onset
    assert e.regions and all(a >= 1.3 - 1e-9 for a, _ in e.regions)
    assert e.duration == pytest.approx(3.0)


def test_attention_weights_from_a_model_that_has_them(tmp_path_factory, tone_corpus, tmp_path):
    rec = Recognizer.from_checkpoint(tiny_checkpoint(tmp_path_factory, tone_corpus))
    path = tmp_path / "high.wav"
    sf.write(path, voice(320, 1.0), SR)
    e = rec.explain_file(path, methods=("occlusion", "gradient", "attention"), cues=False)
    weights = np.array(e.saliency["attention"].values)
    assert weights.sum() == pytest.approx(1.0, abs=1e-4) and (weights >= 0).all()
    assert set(e.saliency) == {"occlusion", "gradient", "attention"} and e.notes == ()


def test_network_gradients_add_up_to_the_score_change(tmp_path_factory, tone_corpus):
    # integrated gradients through an MLL network: from the training mean frame, the frames'
    # shares sum to the change of (logit - mean logit), read off the model's classify path
    rec = Recognizer.from_checkpoint(tiny_checkpoint(tmp_path_factory, tone_corpus))
    model = rec.model
    feats = rec.encode([voice(320, 1.0, seed=2)])[0]
    target = 0
    attribution = explain.network_attribution(model, feats, target, steps=64)
    assert attribution.shape == (feats.shape[-2],)
    mean = np.asarray(model.normalizer.stats["*"][0], dtype=np.float32)
    baseline = np.broadcast_to(mean, feats.shape).astype(np.float32)

    def score(frames: np.ndarray) -> float:
        z = np.log(model.classify([frames], rounded=True).probabilities[0])
        return float(z[target] - z.mean())

    expected = score(feats) - score(baseline)
    assert abs(expected) > 0.05
    assert attribution.sum() == pytest.approx(expected, rel=0.05, abs=0.02)
    assert attribution.std() > 0.01 * abs(attribution).mean()


def test_record_has_the_stable_names(default, tmp_path):
    e = default.explain_file(example_path(), cues=False)
    d = json.loads(json.dumps(e.to_dict()))
    assert {"path", "label", "probabilities", "saliency", "cues", "sentence"} <= set(d)
    assert d["label"] == default.predict_file(example_path()).label
    sal = d["saliency"]["occlusion"]
    assert len(sal["times"]) == len(sal["values"]) > 10
    assert d["primary"] == "occlusion" and d["regions"]


def test_sentence_names_the_furthest_cues_and_the_expectation():
    cues = (Cue("f0_mean", "st", 10.0, 5.0, 1.9, "+"),
            Cue("intensity_mean", "dB", 70.0, 60.0, 2.3, "+"),
            Cue("speech_rate", "1/s", 4.0, 4.0, 0.2, "+"),
            Cue("jitter", "%", 1.0, 1.0, None, None))
    text = describe("angry", 0.82, ((0.2, 0.8), (1.0, 1.6)), cues)
    assert text.startswith("angry (0.82): the salient 1.2 s have loudness against the "
                           "recording's +2.3 SD and F0 +1.9 SD against neutral speech")
    assert "as expected for angry" in text and "speech rate typical" in text
    against = describe("sad", 0.6, ((0.0, 1.0),), (Cue("f0_mean", "st", 1, 1, 2.0, "-"),))
    assert "not what is expected for sad" in against
    assert Cue("f0_mean", "st", 1, 1, 2.0, "-").agrees is False
    assert Cue("f0_mean", "st", 1, 1, 0.5, "-").agrees is None


def run(capsys, *args):
    try:
        code = main(["explain", *map(str, args)])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_keeps_going_past_bad_files_and_reports_them(tmp_path, capsys):
    folder = tmp_path
    bad_inputs(tmp_path)
    out = tmp_path / "explained.jsonl"
    code, _, err = run(capsys, folder / "good.wav", folder / "missing.wav", folder / "text.wav",
                       folder / "empty.wav", "--no-cues", "-o", out)
    assert code == 1 and "3 of 4 inputs failed" in err and "Traceback" not in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [("error" in r) for r in records] == [False, True, True, True]
    assert records[1]["error"] == "file not found"
    assert records[0]["saliency"]["occlusion"]["values"]


@pytest.mark.parametrize("args, message", [
    (("--hop", "0.5", "--window", "0.2"), "--hop 0.5 is longer than --window 0.2"),
    (("--top", "1.5"), "--top is a share"),
    (("--method", "gradient", "--primary", "occlusion"), "--primary occlusion is not among"),
    (("-o", "/no/such/folder/x.json"), "does not exist"),
    (("--format", "html"), "--format html writes files: give -o FILE.html"),
])
def test_cli_checks_options_before_any_work(args, message, capsys):
    code, _, err = run(capsys, example_path(), "--no-cues", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cli_refuses_silence_and_explains_long_recordings(tmp_path, capsys):
    sf.write(tmp_path / "quiet.wav", gap(1.0), SR)
    # longer than the default model's whole_seconds (6 s): classified in windows
    sf.write(tmp_path / "long.wav", np.concatenate([gap(3.0), voice(200, 3.0), gap(2.0)]), SR)
    out_file = tmp_path / "out.jsonl"
    code, out, err = run(capsys, tmp_path / "quiet.wav", tmp_path / "long.wav", "--no-cues",
                         "--format", "jsonl", "-o", out_file)
    assert code == 1 and "1 of 2 inputs failed" in err
    quiet, long = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert quiet["error"] == "no speech to explain (the recording is silent)"
    assert long["duration"] == pytest.approx(8.0) and set(long["saliency"]) == {
        "occlusion", "gradient"}
    with pytest.raises(EmovoxError, match="no speech"):
        Recognizer.default().explain_file(tmp_path / "quiet.wav", cues=False)


@pytest.fixture(scope="module")
def windowed():
    # whole_seconds 3 s: a 9 s signal is classified as the mean of 1.5 s windows every 0.5 s
    return Recognizer.default(threads=1, window=1.5, hop=0.5)


def test_windowed_occlusion_is_what_predict_gives_for_the_silenced_signal(windowed):
    x = np.concatenate([voice(180, 2.0, seed=1), gap(1.5), voice(260, 2.5, seed=2), gap(1.0),
                        voice(140, 2.0, seed=3)])
    assert len(x) > windowed.whole_seconds * SR
    label = windowed.predict_signal(x, SR).label
    scorer = explain.WindowedScore(windowed, x, label)

    def probability(signal: np.ndarray) -> float:
        p = windowed.predict_signal(signal, SR, timeline=False)
        return float(p.probabilities.get(label, 0.0)) if p.speech else 0.0

    assert scorer.base == pytest.approx(probability(x), abs=1e-6)
    spans = [(0, 8000), (int(0.4 * SR), int(2.3 * SR)),  # a voice's middle; all of it
             (int(3.4 * SR), int(6.1 * SR)), (len(x) - 4000, len(x)), (0, len(x) - 100)]
    drops = []
    for a, b in spans:
        drop = scorer.drop((a, b))
        assert drop == pytest.approx(probability(x) - probability(
            explain.silence(x, SR, [(a, b)])), abs=1e-5)
        drops.append(drop)
    assert max(abs(d) for d in drops) > 0.01  # the spans matter to the answer
    # silencing the gap (2.0-3.5 s) changes no sample: exactly no drop, not rounding noise
    assert scorer.drop((int(2.2 * SR), int(3.3 * SR))) == 0.0
    # every window classified at most once for the untouched audio (a cache, not a re-run)
    assert len(scorer.known) <= len(scorer.spans)


def test_long_recording_saliency_sits_where_the_voice_is(windowed):
    x = np.concatenate([gap(3.0), voice(220, 2.0, seed=4), gap(4.0)])
    e = explain.explain_signal(windowed, x, cues=False)
    assert set(e.saliency) == {"occlusion", "gradient"} and e.notes == ()
    for method in ("occlusion", "gradient"):
        times = np.array(e.saliency[method].times)
        values = np.abs(np.array(e.saliency[method].values))
        assert times[-1] == pytest.approx(8.95)
        voiced = (times > 3.0) & (times < 5.0)
        # occluding the silence right at the voice's edges moves where conditioning trims it
        # (the frames' alignment), so up to 0.2 s around the voice may count a little
        near = (times > 2.8) & (times < 5.2)
        assert values[voiced].sum() > 0.8 * values.sum()
        assert values[~near].sum() < 0.02 * values.sum()
    assert e.regions and all(2.5 <= a and b <= 5.5 for a, b in e.regions)


def test_cues_inside_and_outside_come_from_their_own_stretches():
    signal = np.concatenate([voice(120, 1.2, seed=1), voice(240, 1.2, seed=2)])
    cues, register = explain.measure_cues(signal, SR, ((0.0, 1.2),), 2.4, "angry")
    by = {c.name: c for c in cues}
    assert {"f0_mean", "f0_range", "intensity_mean", "jitter", "shimmer", "hnr",
            "speech_rate"} <= set(by)
    # semitones re 100 Hz: 120 Hz -> 3.2, 240 Hz -> 15.2
    assert by["f0_mean"].inside == pytest.approx(12 * np.log2(1.2), abs=0.5)
    assert by["f0_mean"].outside == pytest.approx(12 * np.log2(2.4), abs=0.5)
    assert by["f0_mean"].expected == "+" and by["speech_rate"].expected == "+"
    assert register in ("low", "high") and by["f0_mean"].z is not None


def test_explanation_with_cues_has_a_sentence_about_them(default):
    e = default.explain_file(example_path())
    assert len(e.cues) >= 7 and e.register is not None
    named = [c for c in e.cues if c.z is not None and abs(c.z) >= explain.NOTABLE_Z]
    assert e.sentence.startswith(f"{e.label} ({e.probabilities[e.label]:.2f}): the salient ")
    if named:  # every cue the sentence names is one of those far from neutral speech
        words = [explain._WORDS[c.name] for c in named]
        assert any(w in e.sentence for w in words)
    assert sum(b - a for a, b in e.regions) >= explain.MIN_SALIENT_SECONDS - 1e-6


def test_cli_writes_a_page_or_figure_per_file(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    other = tmp_path / "example.wav"  # same name, another folder: two files, two names
    other.write_bytes(open(example_path(), "rb").read())
    code, out, _ = run(capsys, example_path(), other, "--no-cues", "--format", "png",
                       "-o", tmp_path / "figs")
    assert code == 0
    made = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert made == ["example-2.png", "example.png"]
    assert all((tmp_path / "figs" / m).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for m in made)
    assert out.count("[") == 2  # each sentence names its file
    code, _, err = run(capsys, example_path(), other, "--no-cues", "-o", tmp_path / "one.html")
    assert code == 2 and "is one file, for one input; 2 inputs need -o FOLDER" in err


def test_readme_table_and_shipped_figures_are_what_the_committed_folds_give(load_benchmark):
    module = load_benchmark("explain_faithfulness")
    readme = module.README.read_text()
    inside = readme.split(module.START, 1)[1].split(module.END, 1)[0]
    assert inside.strip() == module.render_table().strip()
    record = module.shipped_record()
    if record["methods"]:
        assert json.loads(module.DATA.read_text()) == record
        assert explain.measured_faithfulness() == record
        assert record["order"][0] in explain.METHODS


def test_faithfulness_summary_ratios_and_the_most_faithful_method(load_benchmark):
    module = load_benchmark("explain_faithfulness")

    def item(method_drops):  # per method: (deletion, random deletion) at every share
        return {"cost": {m: 0.1 for m in method_drops} | {"all_with_cues": 0.5},
                "methods": {m: {f"{q:g}": {"deletion": d, "deletion_random": r,
                                           "insertion": 0.1, "insertion_random": 0.3}
                                for q in module.SHARES} for m, (d, r) in method_drops.items()},
                "plausibility": {"salient": 0.75, "random": 0.5}}

    docs = [{"items": [item({"occlusion": (0.3, 0.1), "gradient": (0.2, 0.1)}),
                       item({"occlusion": (0.1, 0.1), "gradient": (0.4, 0.1)})]}]
    sm = module.summarise(docs)
    assert sm["methods"]["occlusion"]["0.2"]["deletion_ratio"] == 2.0
    assert sm["methods"]["gradient"]["0.2"]["deletion_ratio"] == 3.0
    assert sm["most_faithful"] == "gradient" and sm["recordings"] == 2
    assert sm["plausibility"] == {"recordings": 2, "salient": 0.75, "random": 0.5}
