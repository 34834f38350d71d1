"""Audio + text fusion trained on the training speakers (`text.fusion`, emovox.fusion)."""

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import _voice
from emovox.bundle import load_checkpoint, save_checkpoint
from emovox.config import load_recipe
from emovox.dataset import FeatureBank
from emovox.errors import ConfigError, EmovoxError
from emovox.experiment import assess_utterances, predict_utterances, run_cv
from emovox.features import build_frontend
from emovox.fusion import (
    RULES,
    combine,
    fuse_matrix,
    fused_answer,
    head_from_dict,
    head_to_dict,
    utterance_texts,
)
from emovox.inference import Recognizer
from emovox.ops import fit_temperature, softmax
from emovox.text import TextAnalyzer
from emovox.textfit import fit_text_head
from emovox.train import fit
from emovox.types import Prediction, Utterance

#: Axes of the toy sentence space: words of one meaning share an axis, as near-synonyms lie
#: close together in a real sentence embedding.
AXES = (("glad", "joy"), ("gloom", "tears"), ("table", "train"))


def toy_encoder(texts):
    """A stand-in sentence encoder: one axis per meaning, plus a constant axis (unit vectors)."""
    v = np.array([[float(any(k in t.lower() for k in axis)) for axis in AXES] + [0.5]
                  for t in texts])
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(autouse=True)
def no_minilm(monkeypatch):
    """Every sentence encoder in this file is the toy one (MiniLM is tested in test_text)."""
    for where in ("emovox.text", "emovox.fusion", "emovox.textfit"):
        monkeypatch.setattr(f"{where}._minilm", lambda threads=None: toy_encoder)


LOGMEL_LOGREG = ['frontend={name = "logmel", n_mels = 32}']


@pytest.fixture(scope="module")
def lexical_corpus(tmp_path_factory):
    """6 speakers, 'happy' and 'sad'. Half the recordings say it by pitch over a neutral
    sentence; the other half at one pitch, the emotion in the words only."""
    root = tmp_path_factory.mktemp("lexical")
    rng = np.random.default_rng(3)
    words = {"happy": ("I am glad", "what a joy", "so glad today", "pure joy"),
             "sad": ("such gloom", "in tears again", "gloom all day", "tears and more tears")}
    utts = []
    for s in range(6):
        base = 110 + 12 * s
        for i in range(12):
            label = "happy" if i % 2 == 0 else "sad"
            prosodic = i < 6
            if prosodic:
                f0, text = base * (1.9 if label == "happy" else 1.0), "the train is on the table"
            else:
                f0, text = base * 1.4, words[label][(i + s) % 4]
            f0 *= 1 + 0.03 * rng.normal()
            path = root / f"s{s}_{i}.wav"
            sf.write(path, _voice(f0, 0.6, rng), 16000)
            utts.append(Utterance(f"lex/s{s}_{i}", str(path), "lex", f"lex/s{s}", label,
                                  extra={"raw_label": label, "transcript": text,
                                         "prosodic": prosodic}))
    return utts


def split(utts):
    test_speakers = {"lex/s4", "lex/s5"}
    return ([u for u in utts if u.speaker not in test_speakers],
            [u for u in utts if u.speaker in test_speakers])


def ua(probs, utts, labels):
    truth = np.array([labels.index(u.label) for u in utts])
    pred = probs.argmax(axis=1)
    return np.mean([np.mean(pred[truth == k] == k) for k in np.unique(truth)])


def test_text_head_learns_words_and_never_gives_an_absent_class_probability():
    vectors = toy_encoder(["so glad", "a joy", "gloom", "tears"])
    head = fit_text_head(vectors, ["happy", "happy", "sad", "sad"], ["angry", "happy", "sad"])
    probs = head.predict_proba(toy_encoder(["glad and joy", "tears of gloom"]))
    assert probs.argmax(axis=1).tolist() == [1, 2]
    assert probs[:, 0].max() < 1e-9  # "angry" never seen in text
    again = head_from_dict(json.loads(json.dumps(head_to_dict(head))))
    np.testing.assert_allclose(again.predict_proba(vectors), head.predict_proba(vectors))
    with pytest.raises(EmovoxError, match="at least 2 emotions"):
        fit_text_head(vectors[:2], ["happy", "happy"], ["happy", "sad"])


def test_softmax_at_a_temperature_divides_the_logits():
    p = np.array([[0.7, 0.2, 0.1]])
    np.testing.assert_allclose(softmax(np.log(p)), p)
    logits = np.log(p) / 2.0
    np.testing.assert_allclose(softmax(np.log(p), 2.0), np.exp(logits) / np.exp(logits).sum())
    assert softmax(np.log(p), 0.1)[0, 0] > 0.99 and softmax(np.log(p), 100.0).std() < 0.01
    assert softmax(np.array([1000.0, 0.0])).tolist() == [1.0, 0.0]  # no overflow


def test_fit_temperature_finds_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(4000, 4))
    truth = np.array([rng.choice(4, p=row) for row in softmax(logits, 2.0)])
    assert fit_temperature(logits, truth) == pytest.approx(2.0, rel=0.1)


def test_fusion_rules():
    audio = np.array([[0.9, 0.1], [0.5, 0.5]])
    text = np.array([[0.2, 0.8], [0.05, 0.95]])
    np.testing.assert_allclose(combine(audio, text, 0.25), 0.75 * audio + 0.25 * text)
    # entropy: the sure branch counts more on its own recording
    fused = combine(audio, text, 0.5, "entropy")
    assert fused[0, 0] > 0.5 * (0.9 + 0.2) and fused[1, 1] > 0.5 * (0.5 + 0.95)
    np.testing.assert_allclose(fused.sum(axis=1), 1.0)
    # product: a branch that rules a class out keeps it out
    out = combine(np.array([0.6, 0.4, 0.0]), np.array([0.0, 0.3, 0.7]), 0.5, "product")
    assert out.argmax() == 1 and out[0] < 1e-5 and out[2] < 1e-5
    for rule in RULES:  # weight 0 is audio alone, 1 is text alone
        np.testing.assert_allclose(combine(audio, text, 0.0, rule), audio, atol=1e-9)
        np.testing.assert_allclose(combine(audio, text, 1.0, rule), text, atol=1e-9)
    with pytest.raises(ConfigError, match="text.rule"):
        combine(audio, text, 0.5, "max")


def test_rows_without_text_keep_the_audio_probabilities():
    audio = np.array([[0.9, 0.1], [0.2, 0.8]])
    text = np.array([[0.0, 1.0], [0.0, 0.0]])
    fused = fuse_matrix(audio, text, np.array([True, False]), 0.5)
    np.testing.assert_allclose(fused, [[0.45, 0.55], [0.2, 0.8]])


def test_transcript_sources(tmp_path):
    class Fake:
        def __init__(self):
            self.calls = []

        def transcribe_file(self, path):
            self.calls.append(path)
            if path.endswith("bad.wav"):
                raise EmovoxError("speech recognition failed (boom)")
            return type("T", (), {"text": f" heard {path[-5]} "})()

    stated = Utterance("c/a", "/x/a.wav", "c", "c/1", "sad", extra={"transcript": " said "})
    unstated = Utterance("c/b", "/x/b.wav", "c", "c/1", "sad")
    broken = Utterance("c/z", "/x/bad.wav", "c", "c/1", "sad")
    utts = [stated, unstated, broken]
    fake = Fake()
    assert utterance_texts(utts, "auto", transcriber=fake) == ["said", "heard b", ""]
    assert fake.calls == ["/x/b.wav", "/x/bad.wav"]  # the stated one is not recognised
    assert utterance_texts(utts, "transcript", transcriber=Fake()) == ["said", "", ""]
    assert utterance_texts(utts, "asr", transcriber=fake)[:2] == ["heard a", "heard b"]
    with pytest.raises(ConfigError, match="text.source"):
        utterance_texts(utts, "subtitles")


@pytest.mark.parametrize("override, match", [
    ("text.weight=1.5", "text.weight"), ("text.folds=1", "text.folds"),
    ("text.fusion='early'", "text.fusion"), ("text.source='ocr'", "text.source"),
    ("text.C=0", "text.C"), ("text.rule='max'", "text.rule")])
def test_bad_text_settings_are_config_errors(override, match):
    with pytest.raises(ConfigError, match=match):
        load_recipe("whisper_logreg", [override])


def test_fusion_learns_a_weight_that_recovers_the_words(lexical_corpus, tmp_path):
    train, test = split(lexical_corpus)
    audio_cfg = load_recipe("whisper_logreg", LOGMEL_LOGREG)
    fused_cfg = load_recipe("whisper_logreg", [*LOGMEL_LOGREG, "text.fusion='late'",
                                               "text.folds=2"])
    audio = fit(audio_cfg, train, [], extra=test, cache_dir=tmp_path, progress=False)
    fused = fit(fused_cfg, train, [], extra=test, cache_dir=tmp_path, progress=False)
    record = fused.info["text"]
    assert record["n_text"] == len(train) and record["source"] == "auto"
    assert record["rule"] in RULES and 0.05 <= record["weight"] <= 0.95  # both branches count
    assert set(record["curve"]) == set(RULES)
    assert set(record["curve"]["mean"]) == {f"{0.05 * k:.2f}" for k in range(21)}
    chosen = record["curve"][record["rule"]][f"{record['weight']:.2f}"]["log_loss"]
    assert chosen == min(c["log_loss"] for r in record["curve"].values() for c in r.values())
    bank = FeatureBank(build_frontend(audio.frontend_config), test, tmp_path, "float16", False)
    p_audio = predict_utterances(audio, bank, test)
    np.testing.assert_allclose(predict_utterances(fused, bank, test), p_audio)  # same acoustics
    texts = [u.extra["transcript"] for u in test]
    p_fused = fused_answer(fused, p_audio, texts).fused
    lexical = [i for i, u in enumerate(test) if not u.extra["prosodic"]]
    prosodic = [i for i, u in enumerate(test) if u.extra["prosodic"]]
    lex_utts = [test[i] for i in lexical]
    assert ua(p_fused[lexical], lex_utts, fused.labels) >= \
        ua(p_audio[lexical], lex_utts, fused.labels) + 0.3
    pro_utts = [test[i] for i in prosodic]
    assert ua(p_fused[prosodic], pro_utts, fused.labels) >= \
        ua(p_audio[prosodic], pro_utts, fused.labels) - 0.1
    # the model file keeps the classifier and the weight (.npz and .pt)
    for name in ("m.npz", "m.pt"):
        save_checkpoint(fused, tmp_path / name)
        back = load_checkpoint(tmp_path / name)
        assert back.config.text.fusion == "late"
        np.testing.assert_allclose(fused_answer(back, p_audio, texts).fused, p_fused)


def test_an_uninformative_text_scores_every_class_evenly_whatever_their_counts():
    # "the train" is said as often in each class as the class is frequent (as RAVDESS's
    # sentences are): it says nothing, though happy recordings are twice as many
    vectors = toy_encoder(["the train"] * 9 + ["glad"] * 4 + ["gloom"] * 2)
    labels = ["happy"] * 6 + ["sad"] * 3 + ["happy"] * 4 + ["sad"] * 2
    head = fit_text_head(vectors, labels, ["happy", "sad"])
    np.testing.assert_allclose(head.predict_proba(toy_encoder(["the train"])), [[0.5, 0.5]],
                               atol=0.03)


def test_the_same_sentence_in_every_emotion_never_changes_an_answer(lexical_corpus, tmp_path):
    """RAVDESS-like: one sentence for every class, classes unevenly counted."""
    train, test = split([u for u in lexical_corpus if u.extra["prosodic"]])
    dropped = {u.id for u in train if u.label == "sad"}
    train = [u for u in train if u.id not in sorted(dropped)[: len(dropped) // 2]]
    config = load_recipe("whisper_logreg", [*LOGMEL_LOGREG, "text.fusion='late'",
                                            "text.folds=2"])
    model = fit(config, train, [], extra=test, cache_dir=tmp_path, progress=False)
    bank = FeatureBank(build_frontend(model.frontend_config), test, tmp_path, "float16", False)
    p_audio = predict_utterances(model, bank, test)
    p_fused = fused_answer(model, p_audio, [u.extra["transcript"] for u in test]).fused
    assert (p_fused.argmax(axis=1) == p_audio.argmax(axis=1)).all()


def test_cv_scores_the_fused_answer_beside_audio_alone(lexical_corpus, tmp_path):
    config = load_recipe("whisper_logreg", [*LOGMEL_LOGREG, "text.fusion='late'",
                                            "text.weight=0.5"])
    doc = run_cv(config, lexical_corpus, corpus="lex", protocol="speaker_kfold", k=3,
                 out_dir=tmp_path / "cv", folds=[1], cache_dir=tmp_path, progress=False)
    fold = doc["folds"][0]
    assert fold["text"]["weight"] == 0.5 and fold["text"]["n_with_text"] == fold["n"]
    assert fold["text"]["rule"] == "mean"  # a fixed weight keeps the plain mean
    assert fold["ua"] > fold["text"]["audio"]["ua"]  # the words add the lexical half
    assert "audio alone: UA" in (tmp_path / "cv" / "report.md").read_text()
    record = json.loads((tmp_path / "cv" / "folds" / "fold_1.json").read_text())
    assert record["text"]["text_alone"]["n"] == fold["n"]


def test_predict_with_text_uses_the_models_classifier_and_weight(lexical_corpus, tmp_path):
    train, _ = split(lexical_corpus)
    config = load_recipe("whisper_logreg", [*LOGMEL_LOGREG, "text.fusion='late'",
                                            "text.weight=0.6"])
    model = fit(config, train, [], cache_dir=tmp_path, progress=False)

    class Given:
        def transcribe_file(self, path):
            from emovox.asr import Transcript

            return Transcript("tears and gloom", (), "en", "given", "given")

    analyzer = TextAnalyzer.for_model(model, transcriber=Given(), encoder=toy_encoder)
    pred = Prediction(label="happy", probabilities={"happy": 0.7, "sad": 0.3}, duration=1.0,
                      path="x.wav")
    out = analyzer.add_text(pred)
    assert out.text_weight == 0.6 and out.text_probabilities["sad"] > 0.9
    assert out.fused_label == "sad"  # 0.4 * 0.7 < 0.6 * ~1 + 0.4 * 0.3
    assert TextAnalyzer.for_model(model, text_weight=0.1, transcriber=Given(),
                                  encoder=toy_encoder).add_text(pred).fused_label == "happy"


def test_lexical_benchmark_never_tests_a_seen_voice_or_sentence(load_benchmark):
    bench = load_benchmark("text_fusion")
    from emovox.text import load_prototypes

    prototypes = {s for v in load_prototypes()[0].values() for s in v}
    sentences = [s for label in bench.CLASSES for s in bench.SENTENCES[label]]
    assert all(len(bench.SENTENCES[label]) == 20 for label in bench.CLASSES)
    assert len(set(sentences)) == len(sentences) and not prototypes & set(sentences)
    rows = bench.plan(4)
    for group in range(1, 5):
        inside = {(label, i) for _, label, i, g in rows if g == group}
        outside = {(label, i) for _, label, i, g in rows if g != group}
        assert inside and not inside & outside
        assert not {v for v, *_, g in rows if g == group} & {v for v, *_, g in rows if g != group}
    assert len(rows) == len(bench.VOICES) * len(sentences) // 4  # each voice: its group's 30


def test_benchmark_block_states_both_measurements(load_benchmark, tmp_path, monkeypatch):
    bench = load_benchmark("text_fusion")
    monkeypatch.setattr(bench, "OUT", tmp_path)
    assert "has not been run" in bench.render()
    (tmp_path / "lexical").mkdir()
    half = {"n": 10, "audio_ua": 40.0, "late_ua": 50.0, "fused_ua": 60.0, "text_ua": 70.0}
    for k, gain in ((1, 20.0), (2, 10.0)):
        doc = {"git_revision": "abc1234567890", "recipe": "whisper_logreg", "weight": 0.5,
               "rule": "product", "fusion": "embedding",
               "all": {**half, "fused_ua": 40.0 + gain}, "words": half,
               "voice": {**half, "text_ua": None}}
        (tmp_path / "lexical" / f"fold_{k}.json").write_text(json.dumps(doc))
    (tmp_path / "ravdess").mkdir()
    folds = [{"ua": 70.0 + k, "text": {"weight": 0.05 * k, "rule": "mean",
                                       "audio": {"ua": 70.0}}} for k in (1, 2)]
    (tmp_path / "ravdess" / "results.json").write_text(json.dumps(
        {"recipe": "whisper_logreg", "n_folds": 6, "folds": folds}))
    text = bench.render()
    assert "joint head **55.0** (gain +15.0, lowest fold +10.0)" in text
    assert "late fusion alone (learned rule and weight: product 0.50) 50.0" in text
    assert "2 of 4 folds" in text
    assert "UA audio alone 70.0, fused **71.5** (+1.5: higher on 2, lower on 0 of 2 folds)" in text
    for k in (1, 2):  # a joint run: which folds the joint head answered
        folds[k - 1]["text"].update(late={"ua": 70.0}, joint_used=k == 1)
    (tmp_path / "ravdess" / "results.json").write_text(json.dumps(
        {"recipe": "whisper_logreg", "n_folds": 6, "folds": folds}))
    assert "passed its out-of-fold check on 1 of 2 folds" in bench.render()
    assert "2 of 6 folds" in text
    assert "mean 0.05, mean 0.10" in text


def test_a_joint_head_reads_the_acoustic_vector_and_the_sentence(lexical_corpus, tmp_path):
    train, test = split(lexical_corpus)
    # a small acoustic vector (8 mel bands): 48 training recordings cannot pin down more
    config = load_recipe("whisper_logreg", ['frontend={name = "logmel", n_mels = 8}',
                                            "text.fusion='embedding'", "text.folds=2"])
    model = fit(config, train, [], extra=test, cache_dir=tmp_path, progress=False)
    record = model.info["text"]
    assert record["joint_dims"][1] == len(AXES) + 1 and "weight" in record  # late one too
    check = record["joint_check"]  # it earned its place out of fold, calibrated
    assert check["used"] and check["log_loss"] < check["late_log_loss"]
    assert record["joint"]["temperature"] == check["temperature"] > 0
    bank = FeatureBank(build_frontend(model.frontend_config), test, tmp_path, "float16", False)
    said = assess_utterances(model, bank, test, vectors=True)
    assert said.embeddings.shape[1] == record["joint_dims"][0]
    texts = [u.extra["transcript"] for u in test]
    answer = fused_answer(model, said.probabilities, texts, said.embeddings)
    assert not np.allclose(answer.fused, answer.late)  # the joint head answers
    raw = head_from_dict({**record["joint"], "temperature": 1.0}).logits(np.hstack(
        [said.embeddings, toy_encoder(texts)]))
    np.testing.assert_allclose(answer.fused, softmax(raw, check["temperature"]))
    lexical = [i for i, u in enumerate(test) if not u.extra["prosodic"]]
    lex = [test[i] for i in lexical]
    assert ua(answer.fused[lexical], lex, model.labels) >= \
        ua(said.probabilities[lexical], lex, model.labels) + 0.3
    # without a transcript a recording keeps its audio answer
    silent = fused_answer(model, said.probabilities, [""] * len(test), said.embeddings)
    np.testing.assert_allclose(silent.fused, said.probabilities)
    # prediction: the recognizer hands the vector on, outputs never show it
    path = tmp_path / "joint.npz"
    save_checkpoint(model, path)
    rec = Recognizer.from_checkpoint(path)
    pred = rec.predict_file(test[lexical[0]].path)
    assert pred.fusion_vector is not None and pred.embedding is None
    assert "fusion_vector" not in pred.to_dict()
    np.testing.assert_allclose(pred.fusion_vector, said.embeddings[lexical[0]], rtol=1e-4,
                               atol=1e-4)

    class Given:
        def transcribe_file(self, path):
            from emovox.asr import Transcript

            return Transcript(texts[lexical[0]], (), "en", "given", "given")

    out = TextAnalyzer.for_model(model, transcriber=Given(), encoder=toy_encoder).add_text(pred)
    np.testing.assert_allclose([out.fused_probabilities[k] for k in model.labels],
                               answer.fused[lexical[0]], atol=1e-3)
    late = TextAnalyzer.for_model(model, text_weight=0.5, transcriber=Given(),
                                  encoder=toy_encoder)
    assert late.joint is None  # a given weight means late fusion


def test_word_level_pools_the_frames_each_word_spans():
    from emovox.fusion import word_level
    from emovox.types import Word

    frames = np.arange(10, dtype=float)[:, None] * np.ones((1, 2))  # frame j holds j
    words = [Word("glad", 0.0, 0.04, 1.0), Word("gloom", 0.1, 0.16, 1.0), Word("", 0.1, 0.2, 1.0)]
    v = word_level(frames, 0.02, words, toy_encoder)
    # "glad": frames 0-1 (mean 0.5); "gloom": frames 5-7 (mean 6); each word counts once
    np.testing.assert_allclose(v[:2], [(0.5 + 6.0) / 2] * 2)
    np.testing.assert_allclose(v[2:], toy_encoder(["glad", "gloom"]).mean(axis=0))
    assert word_level(frames, 0.02, [], toy_encoder) is None
    layers = np.stack([np.zeros((10, 2)), frames])  # [L, T, D]: the last layer is read
    np.testing.assert_allclose(word_level(layers, 0.02, words, toy_encoder), v)


def test_word_level_joint_head_from_asr_words(lexical_corpus, tmp_path, monkeypatch):
    from emovox.asr import Transcript
    from emovox.types import Word

    said = {u.path: u.extra["transcript"] for u in lexical_corpus}

    class FakeASR:
        """Each file's sentence, its words spread evenly over the first 0.6 s."""

        def __init__(self, **options):
            self.calls = 0

        def transcribe_file(self, path):
            self.calls += 1
            words = said[str(path)].split()
            step = 0.6 / len(words)
            return Transcript(" ".join(words), tuple(Word(w, k * step, (k + 1) * step, 1.0)
                                                    for k, w in enumerate(words)),
                              "en", "fake", "asr")

    monkeypatch.setattr("emovox.asr.Transcriber", FakeASR)
    with pytest.raises(ConfigError, match="text.words"):
        load_recipe("whisper_logreg", ["text.fusion='embedding'", "text.words=true"])
    train, test = split(lexical_corpus)
    config = load_recipe("whisper_logreg", ['frontend={name = "logmel", n_mels = 8}',
                                            "text.fusion='embedding'", "text.source='asr'",
                                            "text.words=true", "text.folds=2"])
    model = fit(config, train, [], extra=test, cache_dir=tmp_path, progress=False)
    record = model.info["text"]
    assert record["joint_words"] and record["joint_dims"] == [16, len(AXES) + 1,
                                                             8 + len(AXES) + 1]
    path = tmp_path / "words.npz"
    save_checkpoint(model, path)
    rec = Recognizer.from_checkpoint(path)
    lexical = [u for u in test if not u.extra["prosodic"]]
    preds = [rec.predict_file(u.path) for u in lexical]
    analyzer = TextAnalyzer.for_model(model, transcriber=FakeASR(), encoder=toy_encoder)
    assert analyzer.word_frontend is not None
    out = analyzer.add_text_all(preds)
    truth = [u.label for u in lexical]
    assert np.mean([p.fused_label == t for p, t in zip(out, truth, strict=True)]) >= \
        np.mean([p.label == t for p, t in zip(preds, truth, strict=True)]) + 0.3

    class Given(FakeASR):  # a given transcript has no word times: late fusion answers
        def transcribe_file(self, path):
            return Transcript(said[str(path)], (), "en", "given", "given")

    given = TextAnalyzer.for_model(model, transcriber=Given(), encoder=toy_encoder)
    late = TextAnalyzer(model.labels, text_weight=record["weight"], transcriber=Given(),
                        scorer=given.scorer, rule=record["rule"])
    assert given.add_text(preds[0]).fused_probabilities == \
        late.add_text(preds[0]).fused_probabilities


def test_a_joint_head_that_loses_out_of_fold_is_not_used(lexical_corpus, tmp_path, monkeypatch):
    """The words say nothing here (one sentence for all); a joint head can only overfit."""
    import emovox.textfit as textfit

    train, test = split([u for u in lexical_corpus if u.extra["prosodic"]])
    real = textfit._log_loss
    calls = []

    def joint_loses(probs, truth):  # the joint check is the last log loss computed
        calls.append(1)
        return real(probs, truth) + (1.0 if len(calls) > len(RULES) * 21 else 0.0)

    monkeypatch.setattr(textfit, "_log_loss", joint_loses)
    config = load_recipe("whisper_logreg", [*LOGMEL_LOGREG, "text.fusion='embedding'",
                                            "text.folds=2"])
    model = fit(config, train, [], extra=test, cache_dir=tmp_path, progress=False)
    record = model.info["text"]
    assert record["joint_check"]["used"] is False and "joint" not in record
    bank = FeatureBank(build_frontend(model.frontend_config), test, tmp_path, "float16", False)
    said = assess_utterances(model, bank, test, vectors=True)
    answer = fused_answer(model, said.probabilities, [u.extra["transcript"] for u in test],
                          said.embeddings)
    np.testing.assert_allclose(answer.fused, answer.late)


def test_a_neural_recipe_fuses_through_its_embedding(lexical_corpus, tmp_path):
    from conftest import TINY_MODEL

    train, test = split(lexical_corpus)
    config = load_recipe("mll", [*TINY_MODEL, "optim.epochs=3", "text.fusion='embedding'",
                                 "text.folds=2"])
    model = fit(config, train, [], extra=test, cache_dir=tmp_path, progress=False)
    record = model.info["text"]
    assert record["joint_dims"][0] == config.model["embedding_dim"]  # 16 in TINY_MODEL
    bank = FeatureBank(build_frontend(model.frontend_config), test, tmp_path, "float16", False)
    said = assess_utterances(model, bank, test)
    assert said.embeddings.shape[1] == record["joint_dims"][0]  # the network's own embedding
    answer = fused_answer(model, said.probabilities, [u.extra["transcript"] for u in test],
                          said.embeddings)
    np.testing.assert_allclose(answer.fused.sum(axis=1), 1.0)
    assert "joint_check" in record and record["n_text"] == len(train)


def test_fusion_without_the_text_extra_fails_before_any_work(lexical_corpus, tmp_path,
                                                              monkeypatch):
    import importlib.util

    from emovox.errors import MissingExtraError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                        if name == "sentence_transformers" else real(name, *a))
    config = load_recipe("whisper_logreg", [*LOGMEL_LOGREG, "text.fusion='late'"])
    with pytest.raises(MissingExtraError, match="text"):
        fit(config, lexical_corpus[:8], [], cache_dir=tmp_path, progress=False)
    with pytest.raises(MissingExtraError, match="text"):
        run_cv(config, lexical_corpus, corpus="lex", protocol="speaker_kfold", k=3,
               out_dir=tmp_path / "cv", cache_dir=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())  # no feature was extracted, no folder made
