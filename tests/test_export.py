"""ONNX export: one graph from waveform to probabilities, its metadata, parity and its errors."""

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from emovox.bundle import load_checkpoint, save_checkpoint  # noqa: E402
from emovox.cli import main  # noqa: E402
from emovox.export import ExportError, check_parity, export_onnx, read_metadata  # noqa: E402
from test_inference import tiny_checkpoint, voice  # noqa: E402

SR = 16000
WHISPER = ['frontend={name = "whisper", layer = "all", level_db = -26.0, trim_db = 40.0}',
           "classic.calibration_folds=2"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, tone_corpus):
    """A conditioned, calibrated Whisper logistic regression trained on the tone corpus."""
    from emovox.config import load_recipe
    from emovox.corpora import load_corpus
    from emovox.train import fit

    path = tmp_path_factory.mktemp("export") / "model.pt"
    config = load_recipe("whisper_logreg", WHISPER)
    save_checkpoint(fit(config, load_corpus("manifest", tone_corpus), [], progress=False), path)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    for i, f0 in enumerate([330, 300, 120, 110, 250]):
        x = voice(f0, 0.8 + 0.2 * i, seed=i, level=0.02 + 0.1 * i)
        x = np.concatenate([np.zeros(SR // (i + 1), np.float32), x])  # quiet, framed
        sf.write(folder / f"c{i}.wav", x, SR)
    return sorted(folder.glob("*.wav"))


@pytest.fixture(scope="module")
def exported(model_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    model = load_checkpoint(model_path)
    return export_onnx(model, out / "m.onnx"), export_onnx(model, out / "m8.onnx", int8=True)


def test_the_graph_gives_the_models_probabilities(model_path, exported, clips):
    fp32, _ = exported
    report = check_parity(load_checkpoint(model_path), fp32, clips)
    assert report.compared == len(clips) and report.agreement == 1.0
    assert report.max_abs_diff < 1e-4
    # one self-contained file: no external weights beside it
    from pathlib import Path

    assert sorted(p.name for p in Path(fp32).parent.iterdir()) == ["m.onnx", "m8.onnx"]


def test_int8_is_smaller_and_keeps_the_labels(model_path, exported, clips):
    fp32, int8 = exported
    import os

    assert os.path.getsize(int8) < 0.5 * os.path.getsize(fp32)
    report = check_parity(load_checkpoint(model_path), int8, clips)
    assert report.agreement == 1.0 and 0 < report.max_abs_diff < 0.5


def test_int8_keeps_the_first_layers_attention_in_float(exported):
    import onnx

    from emovox.export import FLOAT_SCOPES, _float_nodes

    fp32, int8 = (onnx.load(str(p)) for p in exported)
    kept = _float_nodes(fp32)
    assert len(kept) == len(FLOAT_SCOPES)  # the fused q/k/v and the output projection
    weights = {i.name for i in int8.graph.initializer}

    def in_a_layer(node):
        return any(p.key == "pkg.torch.onnx.name_scopes" and "layers." in p.value
                   for p in node.metadata_props)

    float_matmuls = {n.name for n in int8.graph.node if n.op_type == "MatMul"
                     and any(i in weights for i in n.input) and in_a_layer(n)}
    assert float_matmuls == set(kept)
    quantised = [n for n in int8.graph.node if n.op_type in ("MatMulInteger",
                                                              "DynamicQuantizeMatMul")]
    assert len(quantised) >= 4 * 3  # every other encoder layer's projections (4 layers)


def test_the_metadata_says_how_to_feed_the_graph(model_path, exported):
    meta = read_metadata(exported[0])
    model = load_checkpoint(model_path)
    assert meta["labels"] == list(model.labels) and meta["sample_rate"] == SR
    assert meta["frontend"]["level_db"] == -26.0 and meta["frontend"]["trim_db"] == 40.0
    assert meta["int8"] == "false" and read_metadata(exported[1])["int8"] == "true"
    assert "MIT" in meta["encoder_licence"] and meta["version"]


def test_models_that_cannot_be_exported_say_why(tmp_path_factory, tone_corpus, tmp_path):
    logmel = load_checkpoint(tiny_checkpoint(tmp_path_factory, tone_corpus, "logreg"))
    with pytest.raises(ExportError, match="only Whisper-frontend models"):
        export_onnx(logmel, tmp_path / "x.onnx")
    neural = load_checkpoint(tiny_checkpoint(tmp_path_factory, tone_corpus))
    with pytest.raises(ExportError, match="frontend|logistic-regression"):
        export_onnx(neural, tmp_path / "y.onnx")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_files_that_are_not_emovox_graphs_are_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                           [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), tmp_path / "other.onnx")
    with pytest.raises(ExportError, match="without emovox metadata"):
        read_metadata(tmp_path / "other.onnx")
    (tmp_path / "text.onnx").write_text("not a model")
    with pytest.raises(ExportError, match="not an ONNX model"):
        read_metadata(tmp_path / "text.onnx")
    with pytest.raises(ExportError, match="file not found"):
        read_metadata(tmp_path / "missing.onnx")


def run(capsys, *args):
    code = main(["export", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_command_checks_parity_and_fails_when_asked_for_more(model_path, clips, tmp_path,
                                                                   capsys):
    code, out, err = run(capsys, "--model", model_path, "--onnx", tmp_path / "a.onnx",
                         "--check", clips[0].parent)
    assert code == 0 and "labels agree on 100.0 %" in out and "Traceback" not in err
    labels = load_checkpoint(model_path).labels
    assert read_metadata(tmp_path / "a.onnx")["labels"] == list(labels)
    code, out, err = run(capsys, "--model", model_path, "--onnx", tmp_path / "b.onnx",
                         "--check", clips[0], "--max-diff", "0")
    assert code == 2 and "parity check failed" in err and len(err.strip().splitlines()) == 1


def test_a_gated_model_exports_torch_free_and_the_whole_graph_says_why_not(
        tone_corpus, clips, tmp_path, capsys):
    from emovox.config import load_recipe
    from emovox.corpora import load_corpus
    from emovox.train import fit

    gated = ['frontend={name = "whisper", layer = "all", level_db = -26.0, trim_db = 40.0, '
             'gate_db = 10.0}', "classic.calibration_folds=2"]
    model = fit(load_recipe("whisper_logreg", gated), load_corpus("manifest", tone_corpus), [],
                progress=False)
    path = tmp_path / "gated.pt"
    save_checkpoint(model, path)
    # the torch-free copy gates the same frames as the PyTorch model it is checked against
    code, out, err = run(capsys, "--model", path, "--npz", tmp_path / "g.npz",
                         "--check", clips[0].parent, "--max-diff", "1e-3")
    assert code == 0 and "labels agree on 100.0 %" in out, err
    code, out, err = run(capsys, "--model", path, "--onnx", tmp_path / "g.onnx")
    assert code == 2 and "gate_db" in err and "--npz" in err and "Traceback" not in err
    assert not (tmp_path / "g.onnx").exists()


@pytest.mark.parametrize("args, message", [
    (["--onnx", "{tmp}/out.txt"], "must end in .onnx"),
    (["--onnx", "{tmp}/no/such/out.onnx"], "does not exist"),
    (["--onnx", "{tmp}/out.onnx", "--model", "{tmp}/missing.pt"], "checkpoint not found"),
    (["--onnx", "{tmp}/out.onnx", "--min-agreement", "2"], "--min-agreement"),
])
def test_bad_export_options_fail_before_any_work(args, message, tmp_path, capsys):
    code, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2 and message in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.onnx"))

