"""Training: one ``fit()`` you can read top to bottom, producing a :class:`~emovox.bundle.Bundle`.

Two kinds of trainer share the data path (:class:`~emovox.dataset.FeatureBank`):

- ``method = "neural"``: the MLL network (:func:`emovox.bundle.build_network`) on frame
  features, trained with waveform mixing (EAM by default), the multi-loss objective
  (:class:`emovox.losses.MLLLoss`), lr x 7/8 per epoch, early stopping on the validation
  speakers' UA (or weight averaging over the last epochs). Features of unmixed utterances come
  from the bank; mixed waveforms are encoded on the fly by the frontend's torch module.
  ``optim.ensemble`` trains several seeds; ``classic.fuse`` adds a logistic regression.
- ``method = "logreg"`` / ``"linear"``: the classic baselines, a logistic regression (stored as
  plain arrays) or a calibrated linear SVM on mean+std pooled (or functional) features.

Training versions of a recording: the clean audio, speed factors, multi-condition copies and,
with ``augment.covada``, voice-converted copies of the recordings an early model learned
easily (:mod:`emovox.covada`; only those recordings have them).

Flow of :func:`fit`: features (bank) -> normalisation statistics -> (CO-VADA: early model,
selection, converted copies) -> the trainer -> (``text.fusion``: the text classifier and the
fusion weight, :mod:`emovox.fusion`) -> a bundle.
The recipe options are documented in :mod:`emovox.config`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import covada
from .augment import apply_batch_mixing
from .bundle import (
    Bundle,
    LinearHead,
    Normalizer,
    build_network,
    device_of,
    run_network,
    save_atomic,
)
from .config import (
    NUISANCE_MISSING,
    TrainConfig,
    build_section,
    config_from_dict,
    frontend_options,
    is_finetuned,
    member_config,
)
from .dataset import FeatureBank, fit_normalizer, group_of
from .errors import ConfigError, EmovoxError, require
from .evaluate import ccc, unweighted_accuracy
from .features import build_frontend, condition_signal, gate_frames
from .labels import ordered
from .layers import pad_frames, pad_waves
from .losses import LossConfig, MLLLoss
from .models import Ensemble, LinearMember, WaveModel
from .ops import fit_temperature, pool_stats
from .targets import DIMENSIONS, distribution_matrix, sphere_regions, vad_matrix, vad_scale
from .types import Utterance

__all__ = ["fit"]


def fit(
    config: TrainConfig,
    train: Sequence[Utterance],
    valid: Sequence[Utterance],
    *,
    labels: Sequence[str] | None = None,
    extra: Sequence[Utterance] = (),
    cache_dir: str | Path | None = None,
    frontend: Any = None,
    bank: FeatureBank | None = None,
    run_dir: str | Path | None = None,
    progress: bool = True,
) -> Bundle:
    """Train one model.

    Args:
        config: The run's config.
        train: Training utterances.
        valid: Validation utterances (other speakers) for early stopping; may be empty.
        labels: Class order (default: the labels present in ``train``, canonical order).
        extra: Further utterances whose features should be ready afterwards (test speakers);
            with ``data.normalization = "speaker"`` their unlabelled statistics are used.
        cache_dir: Feature cache root (``None``: no cache).
        frontend: A built frontend (default: built from ``config.frontend``).
        bank: Pre-extracted features covering every utterance (shared across folds).
        run_dir: If set, ``last.pt`` is written there every epoch and a matching one is
            resumed from.
        progress: Per-epoch progress lines on stderr.

    Returns:
        The trained model; ``info["history"]`` holds the per-epoch log, ``info["covada"]``
        what CO-VADA did (:func:`emovox.covada.plan`).
    """
    if not train:
        raise EmovoxError("no training utterances")
    if config.method == "neural" and config.data.train_on_valid:
        train, valid = list(train) + list(valid), []
    classes = list(labels) if labels else list(ordered(u.label for u in train if u.label))
    present = {u.label for u in list(train) + list(valid) if u.label}
    dimensional_only = not present and config.method == "neural" and \
        build_section(LossConfig, config.loss, "loss").vad > 0
    if dimensional_only:  # valence/arousal/dominance only: a model without emotion classes
        classes = []
    elif len(present) < 2:
        raise EmovoxError(f"training needs recordings of at least 2 emotions; these "
                          f"{len(train) + len(valid)} are all {sorted(present) or ['unlabelled']}")
    if config.method != "neural":
        require("sklearn", "sklearn")  # before any feature is extracted
    if "corpus" in config.classic.nuisance and len({u.corpus for u in train}) < 2:
        raise ConfigError(NUISANCE_MISSING["corpus"])
    if config.augment.covada:
        require("parselmouth", "explain")
    if config.text.fusion != "none":  # MiniLM (and ASR) before any feature is extracted
        from .text import check_text_extra

        check_text_extra()
    if config.optim.threads:
        torch.set_num_threads(config.optim.threads)
    if frontend is None:
        frontend = build_frontend(frontend_options(config))
    if bank is None:
        everything = list(train) + list(valid) + list(extra)
        bank = FeatureBank(frontend, everything, Path(cache_dir) if cache_dir else None,
                           config.data.cache_dtype, progress)
    normalizer = fit_normalizer(config.data.normalization, bank, train, list(valid) + list(extra))
    mode = config.data.normalization
    base = dict(config=config, labels=classes, sample_rate=int(frontend.sample_rate),
                frontend_config=frontend.config(), normalizer=normalizer)
    trained = [c for c in classes if any(u.label == c for u in list(train) + list(valid))]
    plan = covada.CovadaPlan({}, {})
    if config.method != "neural":
        # No model selection: the validation speakers are training data here.
        pool = list(train) + list(valid)
        normalizer = fit_normalizer(config.data.normalization, bank, pool, list(extra))
        base["normalizer"] = normalizer
        if config.augment.covada:
            plan = _covada(config, pool, bank, normalizer, classes, frontend, base, progress)
        model = _fit_classic(config, pool, bank, normalizer, classes, base, plan.copies)
    else:
        if config.classic.fuse and bank.get(train[0]).shape[-2] == 1:
            raise ConfigError("classic.fuse needs frame-level features (this frontend gives "
                              "functionals)")
        # The networks train without the fused linear model; it joins them afterwards.
        nets = dataclasses.replace(config, classic=dataclasses.replace(config.classic,
                                                                       fuse=False))
        base["config"] = nets
        if config.augment.covada:
            plan = _covada(config, train, bank, normalizer, classes, frontend, base, progress)
        fitter = _fit_ensemble if config.optim.ensemble > 1 else _fit_neural
        model = fitter(nets, train, valid, bank, normalizer, mode, classes, frontend, base,
                       Path(run_dir) if run_dir else None, progress, copies=plan.copies)
        if config.classic.fuse:
            model = _fuse_linear(config, model, list(train) + list(valid), bank, normalizer,
                                 classes, progress, plan.copies)
    if config.text.fusion != "none":
        model = _attach_text(config, model, list(train) + list(valid), classes, frontend, bank,
                             cache_dir, progress)
    model.info["trained_classes"] = trained
    if config.method == "neural" and (plan_vad := vad_plan(config, train)):
        model.info["vad"] = plan_vad
    if config.augment.covada:
        model.info["covada"] = plan.record
    return model


def _attach_text(config: TrainConfig, model: Bundle, pool: Sequence[Utterance],
                 classes: list[str], frontend: Any, bank: FeatureBank,
                 cache_dir: str | Path | None, progress: bool) -> Bundle:
    """The text classifier and fusion weight (:func:`emovox.fusion.attach_text`)."""
    from .textfit import attach_text

    audio_only = dataclasses.replace(config, text=dataclasses.replace(config.text,
                                                                      fusion="none",
                                                                      words=False))

    def refit(subset: Sequence[Utterance]) -> Bundle:
        return fit(audio_only, subset, [], labels=classes, frontend=frontend, bank=bank,
                   progress=False)

    return attach_text(config, model, pool, bank, cache_dir=cache_dir, progress=progress,
                       refit=refit)


def _covada(config: TrainConfig, train: Sequence[Utterance], bank: FeatureBank,
            normalizer: Normalizer, classes: list[str], frontend: Any, base: dict[str, Any],
            progress: bool) -> covada.CovadaPlan:
    """CO-VADA's early model on ``train`` (training speakers only), then its plan."""
    early_cfg = covada.early_config(config)
    early_base = {**base, "config": early_cfg, "normalizer": normalizer}
    history = None
    t0 = time.time()
    if config.method == "neural":
        speed = config.augment.covada_score == "speed"
        early = _fit_neural(early_cfg, train, [], bank, normalizer, config.data.normalization,
                            classes, frontend, early_base, None, False,
                            probe=train if speed else ())
        history = early.info.get("probe_probabilities")
    else:
        head = _fit_linear(early_cfg, train, bank, normalizer, classes)
        early = Bundle(network=head, info={}, **early_base)
    if progress:
        _log(f"CO-VADA early model ({time.time() - t0:.0f} s)")
    return covada.plan(config, train, bank, early, classes, history, progress)


def _fit_classic(config: TrainConfig, train: Sequence[Utterance], bank: FeatureBank,
                 normalizer: Normalizer, classes: list[str], base: dict[str, Any],
                 copies: Mapping[str, Sequence[str]]) -> Bundle:
    network = _fit_linear(config, train, bank, normalizer, classes, copies=copies)
    info = {"n_train": len(train), "n_valid": 0,
            "versions": _version_count(config)}
    return Bundle(network=network, info=info, **base)


def _version_count(config: TrainConfig) -> int:
    return len(config.classic.speeds(config.augment)) + config.augment.condition_copies


def _versions(config: TrainConfig, train: Sequence[Utterance], bank: FeatureBank,
              speeds: Sequence[float]) -> list[Any]:
    """Every version of ``train`` a run uses (clean first), extracted into the bank."""
    bank.add_speeds(train, speeds)
    aug = config.augment
    copies = (bank.add_conditions(train, aug.conditions, aug.condition_copies,
                                  aug.condition_seed) if aug.condition_copies else [])
    return [*speeds, *copies]


def _fit_linear(config: TrainConfig, train: Sequence[Utterance], bank: FeatureBank,
                normalizer: Normalizer, classes: list[str], method: str | None = None,
                copies: Mapping[str, Sequence[str]] | None = None) -> Any:
    """Fit the classic model on pooled statistics of every version of ``train``.

    Versions: the clean audio, each speed factor and each multi-condition copy; then the
    converted copies ``copies`` names (utterance id -> versions; CO-VADA), of those
    utterances only.

    Returns a :class:`LinearHead` (logistic regression) or a scikit-learn pipeline (SVM).
    """
    require("sklearn", "sklearn")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    method = method or config.method
    mode = config.data.normalization
    versions = _versions(config, train, bank, config.classic.speeds(config.augment))
    rows = [(u, v) for v in versions for u in train]
    copies = copies or {}
    held = sorted({v for u in train for v in copies.get(u.id, ())})
    rows += [(u, v) for v in held for u in train if v in copies.get(u.id, ())]
    x = np.stack([pool_stats(normalizer(bank.get(u, v), group_of(u, mode)), config.classic.layer)
                  for u, v in rows])
    x_rows = x
    y = np.array([classes.index(str(u.label)) for u, _ in rows])
    fit_options: dict[str, Any] = {}
    if config.data.targets == "distribution":
        if method != "logreg":
            raise ConfigError("data.targets = \"distribution\" works with the neural models and "
                              "method = \"logreg\"")
        x, y, fit_options["sample_weight"] = _expand_soft(
            x, distribution_matrix([u for u, _ in rows], classes), config.classic.class_weight)
    if method != "logreg":
        from sklearn.calibration import CalibratedClassifierCV

        for name in ("layer_weights", "nuisance"):
            if getattr(config.classic, name):
                raise ConfigError(f"classic.{name} works with method = \"logreg\" only")
        clf = CalibratedClassifierCV(
            LinearSVC(C=config.classic.C, max_iter=config.classic.max_iter,
                      class_weight=config.classic.class_weight), cv=3)
        return make_pipeline(StandardScaler(), clf).fit(x, y)
    head = logreg_head(config, x, y, classes, getattr(bank.frontend, "num_layers", None),
                       rows=rows, x_rows=x_rows, sample_weight=fit_options.get("sample_weight"))
    if config.classic.calibration_folds:
        head.temperature = _fit_temperature(config, train, bank, normalizer, classes, copies)
    return head


def logreg_head(config: TrainConfig, x: np.ndarray, y: np.ndarray, classes: Sequence[str],
                num_layers: int | None, *, rows: Sequence[tuple[Utterance, Any]] = (),
                x_rows: np.ndarray | None = None,
                sample_weight: np.ndarray | None = None) -> LinearHead:
    """The recipe's logistic regression on pooled statistics ``x``, without temperature.

    ``x`` holds a row per training version, standardised, layer-weighted
    (``classic.layer_weights``), with ``classic.nuisance`` projected out (its basis from
    ``x_rows``, one row per ``rows`` entry; default ``x``), both folded into the coefficients.
    ``sample_weight``: per row of ``x`` (soft targets; the class weights are already in it).
    ``classic.prior = "uniform"`` takes each class's (weighted) share of the rows out of its
    intercept.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    clf = LogisticRegression(C=config.classic.C, max_iter=config.classic.max_iter,
                             class_weight=None if sample_weight is not None
                             else config.classic.class_weight)
    scaler = StandardScaler().fit(x)
    weights = _layer_weights(config, x.shape[1], num_layers)
    z = scaler.transform(x) * weights
    basis = (nuisance_basis(config, scaler.transform(x if x_rows is None else x_rows) * weights,
                            rows)
             if config.classic.nuisance_dims else None)
    if basis is not None:
        z = z - (z @ basis) @ basis.T
    logreg = clf.fit(z, y, sample_weight=sample_weight)
    coef = logreg.coef_
    if basis is not None:  # coef . P z = (P coef) . z: the projection folds in as well
        coef = coef - (coef @ basis) @ basis.T
    # logits = coef . (weights * standardised x): the weights fold into the coefficients
    coef, intercept = coef * weights, logreg.intercept_
    if config.classic.prior == "uniform":  # the training class mix out of the intercepts
        mass = np.bincount(np.searchsorted(logreg.classes_, y), minlength=len(logreg.classes_),
                           weights=sample_weight).astype(np.float64)
        log_share = np.log(mass / mass.sum())
        if coef.shape[0] == 1:  # binary: one logit, class 1 against class 0
            intercept = intercept - (log_share[1] - log_share[0])
        else:
            intercept = intercept - log_share
    if coef.shape[0] == 1:  # binary: sigmoid(z) = softmax([0, z])[1]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    # Classes absent from the training data get probability 0 (a very low intercept).
    full_coef = np.zeros((len(classes), coef.shape[1]))
    full_intercept = np.full(len(classes), -1e4)
    full_coef[logreg.classes_] = coef
    full_intercept[logreg.classes_] = intercept
    return LinearHead(scaler.mean_, scaler.scale_, full_coef, full_intercept)


def nuisance_basis(config: TrainConfig, z: np.ndarray,
                   rows: Sequence[tuple[Utterance, Any]]) -> np.ndarray:
    """The ``classic.nuisance_dims`` nuisance directions ``[F, k]`` (orthonormal columns).

    ``z``: one row per ``(utterance, version)`` of ``rows`` (standardised, layer-weighted).
    Each source of ``classic.nuisance`` gives difference vectors (a copy minus its clean
    recording; per class, one corpus's mean minus another's); each source's scatter is scaled
    to the same total, so none drowns the others by its number of vectors; the directions
    are the leading eigenvectors of their sum. Only training rows are used.
    """
    where = {(u.id, v): i for i, (u, v) in enumerate(rows)}
    sources = config.classic.nuisance
    scatter = np.zeros((z.shape[1], z.shape[1]))
    for source in sources:
        if source == "corpus":
            diffs = _corpus_offsets(z, rows, where)
        else:
            wanted = ((lambda v: isinstance(v, str) and v.startswith("mc"))
                      if source == "conditions" else (lambda v: isinstance(v, float) and v != 1.0))
            pairs = [(i, where[(u.id, 1.0)]) for i, (u, v) in enumerate(rows)
                     if wanted(v) and (u.id, 1.0) in where]
            diffs = z[[i for i, _ in pairs]] - z[[j for _, j in pairs]] if pairs else z[:0]
        if not len(diffs):
            raise ConfigError(NUISANCE_MISSING[source])
        part = diffs.T @ diffs
        total = float(np.trace(part))
        if total > 0:
            scatter += part / total
    values, vectors = np.linalg.eigh(scatter)
    keep = min(config.classic.nuisance_dims, int(np.sum(values > 1e-12 * max(values.max(), 1))))
    return vectors[:, ::-1][:, :keep]




def _corpus_offsets(z: np.ndarray, rows: Sequence[tuple[Utterance, Any]],
                    where: Mapping[tuple[str, Any], int]) -> np.ndarray:
    """Per class and pair of corpora, the difference of their mean clean rows."""
    groups: dict[tuple[str, str], list[int]] = {}
    for u, v in rows:
        if isinstance(v, float) and v == 1.0:
            groups.setdefault((str(u.label), u.corpus), []).append(where[(u.id, v)])
    means = {key: z[idx].mean(axis=0) for key, idx in groups.items()}
    out = []
    for label in sorted({lab for lab, _ in means}):
        corpora = sorted(c for lab, c in means if lab == label)
        out += [means[(label, a)] - means[(label, b)]
                for k, a in enumerate(corpora) for b in corpora[k + 1:]]
    return np.array(out) if out else z[:0]


def _expand_soft(x: np.ndarray, dist: np.ndarray, class_weight: Any,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft targets for a logistic regression, as weighted rows.

    One row per (recording, class with a share), weighted by the share, so the fitted loss is
    the cross-entropy to the distribution.

    ``class_weight = "balanced"`` becomes weights from each class's total share (``N / (C *
    share_c)``), as scikit-learn computes them from counts for hard labels.
    """
    rows, cols = np.nonzero(dist > 0)
    weight = dist[rows, cols].astype(np.float64)
    if class_weight == "balanced":
        mass = dist.sum(axis=0)
        present = mass > 0
        per_class = np.zeros(dist.shape[1])
        per_class[present] = dist.shape[0] / (present.sum() * mass[present])
        weight = weight * per_class[cols]
    return x[rows], cols, weight


def _layer_weights(config: TrainConfig, width: int, num_layers: int | None) -> np.ndarray:
    """Per column of the pooled statistics, its layer's ``classic.layer_weights`` (else 1)."""
    weights = config.classic.layer_weights
    if weights is None:
        return np.ones(width)
    if num_layers is not None and len(weights) != num_layers + 1:
        raise ConfigError(f"classic.layer_weights has {len(weights)} weights; this frontend has "
                          f"{num_layers + 1} hidden states (input embedding + {num_layers} "
                          "layers)")
    if width % len(weights):
        raise ConfigError(f"classic.layer_weights has {len(weights)} weights, but the features "
                          f"({width} statistics) do not split into that many layers")
    return np.repeat(np.asarray(weights, dtype=np.float64), width // len(weights))


def _fit_temperature(config: TrainConfig, train: Sequence[Utterance], bank: FeatureBank,
                     normalizer: Normalizer, classes: list[str],
                     copies: Mapping[str, Sequence[str]]) -> float:
    """The temperature that best calibrates held-out training speakers (log loss).

    The training speakers are dealt into ``classic.calibration_folds`` folds (seeded by
    ``optim.seed``); each fold's clean recordings are scored by a logistic regression fitted,
    with every version (``copies`` too), on the other folds. Test speakers are never seen.
    """
    k = config.classic.calibration_folds
    speakers = sorted({u.speaker for u in train})
    if len(speakers) < k:
        raise ConfigError(f"classic.calibration_folds = {k} needs at least {k} training "
                          f"speakers, got {len(speakers)}")
    order = np.random.default_rng(config.optim.seed).permutation(len(speakers))
    fold_of = {speakers[j]: i % k for i, j in enumerate(order)}
    inner = dataclasses.replace(config, classic=dataclasses.replace(config.classic,
                                                                    calibration_folds=0))
    mode = config.data.normalization
    logits: list[np.ndarray] = []
    truth: list[int] = []
    for fold in range(k):
        held = [u for u in train if fold_of[u.speaker] == fold]
        head = _fit_linear(inner, [u for u in train if fold_of[u.speaker] != fold], bank,
                           normalizer, classes, method="logreg", copies=copies)
        x = np.stack([pool_stats(normalizer(bank.get(u), group_of(u, mode)),
                                 config.classic.layer) for u in held])
        logits.append(head.logits(x))
        truth.extend(classes.index(str(u.label)) for u in held)
    return fit_temperature(np.concatenate(logits), np.asarray(truth))


def _fuse_linear(config: TrainConfig, model: Bundle, train: Sequence[Utterance],
                 bank: FeatureBank, normalizer: Normalizer, classes: list[str],
                 progress: bool, copies: Mapping[str, Sequence[str]]) -> Bundle:
    """Add the fitted logistic regression to a trained network as one more member."""
    head = _fit_linear(config, train, bank, normalizer, classes, method="logreg",
                       copies=copies)
    shape = model.info["frame_shape"]
    linear = LinearMember(shape, len(classes), config.classic.layer)
    linear.set_head(head.arrays())
    nets = list(model.network.members) if config.optim.ensemble > 1 else [model.network]
    network = Ensemble([*nets, linear], config.optim.ensemble_weighting)
    network.eval()
    if progress:
        _log(f"fused a logistic regression on pooled statistics ({head.coef.shape[1]} "
             f"features) as member {len(nets) + 1}")
    info = {**model.info, "fused_linear": {"n_train": len(train),
                                           "versions": _version_count(config)}}
    return dataclasses.replace(model, config=config, network=network, info=info)


def _fit_neural(config: TrainConfig, train: Sequence[Utterance], valid: Sequence[Utterance],
                bank: FeatureBank, normalizer: Normalizer, mode: str, classes: list[str],
                frontend: Any, base: dict[str, Any], run_dir: Path | None,
                progress: bool, copies: Mapping[str, Sequence[str]] | None = None,
                probe: Sequence[Utterance] = ()) -> Bundle:
    """Train one network: set-up, the epoch loop (batches, validation, checkpoint), the result.

    Each epoch: shuffle; per batch pick a version per utterance (uniformly among its own:
    speeds, condition copies, and the converted ``copies`` it has), mix waveforms (EAM or a
    baseline; the mixed ones are encoded again, the rest come from the bank), standardise,
    crop, one optimiser step on the multi-loss objective. Then lr x ``lr_decay``, validation
    UA, the best (or averaged) weights kept, ``last.pt`` written for resuming. ``probe``:
    utterances whose clean probabilities are recorded after every epoch
    (``info["probe_probabilities"]``, CO-VADA's learning speed).
    """
    from . import distributed

    opt_cfg = config.optim
    here = distributed.world()  # under torchrun: DDP, each process a share of every batch
    progress = progress and here.main
    torch.manual_seed(opt_cfg.seed)
    # ``order`` draws the shuffle and each recording's version; ``rng`` the mixing and crops.
    # One process: one generator, as always. Under torchrun every process draws the same
    # shuffle and versions as one process would (so a step sees one process's batch) and its
    # own mixing and crops.
    rng = np.random.default_rng([opt_cfg.seed, here.rank] if here.distributed else opt_cfg.seed)
    order_rng = np.random.default_rng(opt_cfg.seed) if here.distributed else rng
    example = bank.get(train[0])
    frame_shape = [*example.shape[:-2], example.shape[-1]]
    network = build_network(config, frame_shape, len(classes))
    finetune = is_finetuned(config)
    if finetune:
        if mode != "global":
            raise ConfigError("fine-tuning the frontend needs data.normalization = \"global\"")
        mean, std = normalizer.stats["*"]
        network = WaveModel(frontend.torch_module(), mean, std, network)
    loss_config = build_section(LossConfig, config.loss, "loss")
    if not classes:  # dimensional only: no emotion terms
        loss_config = dataclasses.replace(loss_config, kl=0.0, focal=0.0, center=0.0,
                                          supcon=0.0, ce=0.0)
    loss_fn = MLLLoss(loss_config, len(classes), network.model.config.embedding_dim)
    device = torch.device(distributed.device_for(opt_cfg.device))
    network.to(device)
    loss_fn.to(device)
    forward = network
    if here.distributed:  # gradients averaged over the processes in backward
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)
        # DDP gave every process rank 0's weights; from here each draws its own dropout
        # masks (with one seed everywhere, recording k of every process's share would get
        # the same mask)
        torch.manual_seed(opt_cfg.seed + 7919 * here.rank)
    loss_params = [p for p in loss_fn.parameters() if p.requires_grad]
    encoder_params = (
        [p for p in network.encoder.parameters() if p.requires_grad] if finetune else []
    )
    encoder_ids = {id(p) for p in encoder_params}
    groups: list[dict[str, Any]] = [{"params": [p for p in network.parameters()
                          if p.requires_grad and id(p) not in encoder_ids]}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": opt_cfg.encoder_lr or opt_cfg.lr})
    optimizer = torch.optim.AdamW(groups, lr=opt_cfg.lr, weight_decay=opt_cfg.weight_decay)
    center_params = loss_fn.center_parameters()
    center_opt = torch.optim.SGD(center_params, lr=loss_config.center_lr) if center_params else None
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=opt_cfg.lr_decay)
    plan = vad_plan(config, train)
    targets, layout = _batch_targets(config, train, classes, plan)
    mixer = config.augment.mixer_config()
    speeds: list[Any] = [1.0, *config.augment.speed_factors]
    if not finetune:
        speeds = _versions(config, train, bank, speeds)
    encoder = None
    if config.augment.method != "none" and not finetune:
        if not hasattr(frontend, "torch_module"):
            raise ConfigError(f"augment.method={config.augment.method} needs a frontend that "
                              f"runs on waveforms during training ('{frontend.name}' does not)")
        encoder = frontend.torch_module().to(device)
        encoder.eval()
    max_frames = max(1, int(config.data.max_train_seconds / max(frontend.frame_seconds, 1e-3)))
    max_samples = int(config.data.max_train_seconds * frontend.sample_rate)
    # early stopping on categories, or on valence/arousal/dominance for a model without them
    valid = ([u for u in valid if u.label in classes] if classes else
             [u for u in valid if plan and any(u.extra.get(d) is not None
                                               for d in plan["dimensions"])])
    valid_feats = [] if finetune else [normalizer(bank.get(u), group_of(u, mode)) for u in valid]
    valid_true = [classes.index(str(u.label)) for u in valid] if classes else []
    valid_sizes = [len(bank.wave(u)) for u in valid] if finetune else [
        f.shape[-2] for f in valid_feats]

    def valid_ua() -> float:
        out = (run_network(network, [bank.wave(u) for u in valid], valid_sizes, pad_waves, 8)
               if finetune else run_network(network, valid_feats, valid_sizes, pad_frames, 64))
        if not classes:  # dimensional only: 100 x the mean CCC of the dimensions given
            return round(100 * _mean_ccc(out.dimensions, vad_matrix(valid), plan), 2)
        return round(_ua(valid_true, out.probabilities.argmax(axis=1)), 2)

    state: dict[str, Any] = {"epoch": 0, "best_ua": -1.0, "best_epoch": 0, "best_state": None,
                             "history": [], "bad_epochs": 0, "avg_state": None, "n_avg": 0}
    averaging = opt_cfg.average_from > 0
    resume_path = run_dir / "last.pt" if run_dir else None
    if run_dir is not None and here.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    saved = None
    resumed_after = None
    if resume_path is not None and resume_path.exists() and here.main:
        saved = torch.load(resume_path, weights_only=False)
    saved = distributed.broadcast(saved)  # every process resumes from rank 0's checkpoint
    if saved is not None:
        if _same_training(saved.get("config"), config) and saved.get("labels") == classes:
            network.load_state_dict(saved["network"])
            loss_fn.load_state_dict(saved["loss"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            if center_opt is not None and saved.get("center_opt"):
                center_opt.load_state_dict(saved["center_opt"])
            order_rng.bit_generator.state = saved["rng"]
            states = saved.get("process_rngs") or []
            if here.distributed and len(states) == here.size:
                rng.bit_generator.state = states[here.rank]
            torch.set_rng_state(saved["torch_rng"])
            state = {"avg_state": None, "n_avg": 0, **saved["state"]}
            resumed_after = state["epoch"]
            if progress:
                _log(f"resumed from {resume_path} after epoch {state['epoch']}")

    copies = copies or {}
    probed: list[np.ndarray] = []
    n = len(train)
    def stopped_early() -> bool:
        return bool(opt_cfg.patience and not averaging
                    and state["bad_epochs"] >= opt_cfg.patience)

    # (a run resumed after it stopped early is finished: it does not train on)
    while state["epoch"] < opt_cfg.epochs and not stopped_early():
        epoch = state["epoch"] + 1
        t0 = time.time()
        network.train()
        loss_fn.train()
        order = order_rng.permutation(n)
        totals: dict[str, float] = {}
        batches = 0
        for start in range(0, n, opt_cfg.batch_size):
            idx = order[start : start + opt_cfg.batch_size]
            utts = [train[i] for i in idx]
            if copies:  # some utterances have more versions than others
                options = [[*speeds, *copies.get(u.id, ())] for u in utts]
                version = [o[int(k)] for o, k in zip(
                    options, order_rng.integers(0, [len(o) for o in options]), strict=True)]
            else:
                version = [speeds[int(k)] for k in order_rng.integers(0, len(speeds), len(utts))] \
                    if len(speeds) > 1 else [1.0] * len(utts)
            # Every process mixes the whole batch as one process would (same generator), then
            # encodes and runs only its share; the loss is the whole batch's (outputs gathered)
            mine = list(range(len(idx)))
            counts: list[int] = []
            if here.distributed:
                part = distributed.batch_share(len(idx), here.rank, here.size)
                if part is None:  # fewer recordings than processes: the batch is left out
                    continue
                mine = part
                shares = [distributed.batch_share(len(idx), r, here.size) or []
                          for r in range(here.size)]
                counts = [len(p) for p in shares]
            y = targets[idx]
            if finetune:  # the encoder trains too: every batch goes through it as waveforms
                waves = [bank.wave(u, v) for u, v in zip(utts, version, strict=True)]
                if config.augment.method != "none" and len(utts) > 1:
                    waves, y, _ = apply_batch_mixing(waves, y, order_rng, config.augment.method,
                                                     mixer)
                first, second = pad_waves([_crop_wave(waves[k], max_samples, rng) for k in mine])
            else:  # cached clean features; only the mixed utterances are encoded again
                feats = {k: bank.get(utts[k], version[k]) for k in mine}
                if encoder is not None and len(utts) > 1:
                    waves = [bank.wave(u, v) for u, v in zip(utts, version, strict=True)]
                    mixed, y, infos = apply_batch_mixing(waves, y, order_rng,
                                                         config.augment.method, mixer)
                    todo = [k for k in mine if infos[k].get("applied")]
                    if todo:
                        heard = [condition_signal(frontend, mixed[k]) for k in todo]
                        encoded = _encode(encoder, heard, feats[mine[0]].ndim)
                        for k, x, f in zip(todo, heard, encoded, strict=True):
                            feats[k] = gate_frames(frontend, x, f)
                first, second = pad_frames([
                    _crop(normalizer(feats[k], group_of(utts[k], mode)), max_frames, rng)
                    for k in mine])
            out = forward(first.to(device), second.to(device))
            if counts:  # the loss of the whole batch (rank-major order), on every process
                out = distributed.gather_output(out, counts)
                y = y[np.concatenate(shares)]
            dist, vad, regions = _split_targets(y, layout)
            loss, logs = loss_fn(out, _tensor(dist, device),
                                 None if vad is None else _tensor(vad, device),
                                 None if regions is None else _tensor(regions, device),
                                 sphere_scale=loss_config.sphere_decay ** (epoch - 1))
            _step(network, loss, optimizer, center_opt, opt_cfg.grad_clip,
                  loss_params if here.distributed else ())
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + float(value)
            batches += 1
        scheduler.step()
        record = {"epoch": epoch, "seconds": round(time.time() - t0, 1),
                  "lr": optimizer.param_groups[0]["lr"]}
        record.update({k: round(v / max(batches, 1), 4) for k, v in totals.items()})
        if valid:
            record["valid_ua"] = valid_ua()
            better = record["valid_ua"] > state["best_ua"]
        else:
            better = True
        if better:
            state["best_ua"] = record.get("valid_ua", 0.0)
            state["best_epoch"] = epoch
            state["best_state"] = copy.deepcopy(network.state_dict())
            state["bad_epochs"] = 0
        else:
            state["bad_epochs"] += 1
        if averaging and epoch >= opt_cfg.average_from:
            state["avg_state"] = _running_mean(state["avg_state"], network.state_dict(),
                                               state["n_avg"])
            state["n_avg"] += 1
        state["history"].append(record)
        state["epoch"] = epoch
        if probe:
            probed.append(_probe(network, probe, bank, normalizer, mode))
        if progress:
            _log("epoch {epoch:>3}  loss {total:.4f}  valid UA {ua}  ({sec} s)".format(
                epoch=epoch, total=record.get("total", math.nan),
                ua=record.get("valid_ua", "-"), sec=record["seconds"]))
        rng_states = distributed.gather(rng.bit_generator.state) if here.distributed else None
        if resume_path is not None and here.main:
            save_atomic({
                "config": config.to_dict(), "labels": classes, "network": network.state_dict(),
                "loss": loss_fn.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "center_opt": center_opt.state_dict() if center_opt is not None else None,
                "rng": order_rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "process_rngs": rng_states, "state": state,
            }, resume_path)
        if stopped_early():
            if progress:
                _log(f"early stop: no better validation UA for {opt_cfg.patience} epochs")
            break
    distributed.check_in_step(list(network.parameters()))
    info: dict[str, Any] = {}
    if state["avg_state"] is not None:
        network.load_state_dict(state["avg_state"])
        network.eval()
        info["averaged_epochs"] = [opt_cfg.average_from, state["epoch"]]
        if valid:
            state["best_ua"] = valid_ua()
        state["best_epoch"] = state["epoch"]
        if progress:
            _log(f"weights averaged over epochs {opt_cfg.average_from}-{state['epoch']}: "
                 f"valid UA {state['best_ua'] if valid else '-'}")
    elif state["best_state"] is not None:
        network.load_state_dict(state["best_state"])
    network.eval()
    info.update({"n_train": len(train), "n_valid": len(valid), "best_epoch": state["best_epoch"],
                 "history": state["history"], "frame_shape": frame_shape, "finetuned": finetune})
    if probe:
        info["probe_probabilities"] = probed
    if resumed_after is not None:  # part (or all) of the training came from ``last.pt``
        info["resumed_after_epoch"] = resumed_after
    return Bundle(network=network, info=info,
                  scores={"valid_ua": state["best_ua"]} if valid else {}, **base)


def _fit_ensemble(config: TrainConfig, train: Sequence[Utterance], valid: Sequence[Utterance],
                  bank: FeatureBank, normalizer: Normalizer, mode: str, classes: list[str],
                  frontend: Any, base: dict[str, Any], run_dir: Path | None,
                  progress: bool, copies: Mapping[str, Sequence[str]] | None = None) -> Bundle:
    """Train ``optim.ensemble`` members one after another (each resumable) and combine them."""
    members = []
    n = config.optim.ensemble
    for k in range(n):
        cfg = member_config(config, k)
        if progress:
            _log(f"ensemble member {k + 1}/{n} (seed {cfg.optim.seed})")
        member_dir = None if run_dir is None else (run_dir if k == 0 else
                                                    run_dir / f"member_{k + 1}")
        members.append(_fit_neural(cfg, train, valid, bank, normalizer, mode, classes,
                                   frontend, {**base, "config": cfg}, member_dir, progress,
                                   copies=copies))
    network = Ensemble([m.network for m in members], config.optim.ensemble_weighting)
    network.eval()
    info: dict[str, Any] = {
        "n_train": len(train), "n_valid": len(valid),
        "best_epoch": [m.info["best_epoch"] for m in members],
        "frame_shape": members[0].info["frame_shape"], "finetuned": False,
        "members": [{"seed": member_config(config, k).optim.seed,
                     **{key: m.info.get(key) for key in ("best_epoch", "averaged_epochs",
                                                         "history", "resumed_after_epoch")},
                     **m.scores} for k, m in enumerate(members)],
    }
    scores: dict[str, Any] = {}
    if valid:
        feats = [normalizer(bank.get(u), group_of(u, mode)) for u in valid]
        probs = run_network(network, feats, [f.shape[-2] for f in feats], pad_frames,
                            64).probabilities
        scores["valid_ua"] = round(_ua([classes.index(str(u.label)) for u in valid],
                                       probs.argmax(axis=1)), 2)
        if progress:
            _log(f"ensemble of {n}: valid UA {scores['valid_ua']}")
    return Bundle(network=network, info=info, scores=scores, **base)


def _probe(network: Any, utterances: Sequence[Utterance], bank: FeatureBank,
           normalizer: Normalizer, mode: str) -> np.ndarray:
    """The network's class probabilities ``[N, C]`` for the clean features (in chunks)."""
    out = []
    for start in range(0, len(utterances), 256):
        feats = [normalizer(bank.get(u), group_of(u, mode))
                 for u in utterances[start : start + 256]]
        out.append(run_network(network, feats, [f.shape[-2] for f in feats], pad_frames,
                               64).probabilities)
    return np.concatenate(out)


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def vad_plan(config: TrainConfig, train: Sequence[Utterance]) -> dict[str, Any] | None:
    """How a run learns valence/arousal/dominance (``loss.vad > 0``), else ``None``.

    The head regresses each dimension standardised by the training recordings' mean and
    standard deviation (``mean``, ``std``; prediction undoes it). The spherical auxiliary
    centres the points on the middle of the scale the recordings declare (``vad_scale``),
    or of the training range where none is declared, and cuts the radius at the training
    points' quantiles (``radius_edges``). Stored in the bundle's ``info["vad"]``.

    Raises:
        EmovoxError: No training recording has a value, or the spherical auxiliary without all
            three dimensions.
    """
    loss = build_section(LossConfig, config.loss, "loss")
    if loss.vad <= 0:
        return None
    values = vad_matrix(train).astype(np.float64)
    counts = np.isfinite(values).sum(axis=0)
    dims = [name for name, n in zip(DIMENSIONS, counts, strict=True) if n >= 2]
    if not dims:
        raise EmovoxError(f"loss.vad needs recordings with valence, arousal or dominance values; "
                          f"none of the {len(train)} training recordings has them")
    if loss.sphere > 0 and len(dims) < 3:
        raise EmovoxError(f"loss.sphere needs valence, arousal and dominance; the training "
                          f"recordings give only {', '.join(dims)} (--set loss.sphere=0 "
                          f"trains without it)")
    with np.errstate(all="ignore"):
        mean = np.where(counts >= 2, np.nanmean(np.where(counts >= 2, values, 0.0), axis=0), 0.0)
        std = np.where(counts >= 2, np.nanstd(np.where(counts >= 2, values, 1.0), axis=0), 1.0)
        declared = vad_scale(train)
        low = np.full(3, declared[0]) if declared else np.nanmin(values, axis=0)
        high = np.full(3, declared[1]) if declared else np.nanmax(values, axis=0)
    centre = np.nan_to_num((low + high) / 2)
    half = np.maximum(np.nan_to_num((high - low) / 2), 1e-6)
    edges: list[float] = []
    if loss.sphere > 0 and loss.sphere_radius_bins > 1:
        complete = values[np.isfinite(values).all(axis=1)]
        radius = np.linalg.norm((complete - centre) / half, axis=1)
        qs = np.arange(1, loss.sphere_radius_bins) / loss.sphere_radius_bins
        edges = [float(v) for v in np.quantile(radius, qs)]
    return {"dimensions": dims, "mean": [float(v) for v in mean],
            "std": [float(max(v, 1e-6)) for v in std],
            "scale": list(declared) if declared else None,
            "centre": [float(v) for v in centre], "half": [float(v) for v in half],
            "radius_edges": edges,
            "regions": 8 * (len(edges) + 1) if loss.sphere > 0 else 0}


def _batch_targets(config: TrainConfig, train: Sequence[Utterance], classes: Sequence[str],
                   plan: Mapping[str, Any] | None) -> tuple[np.ndarray, tuple[int, bool, int]]:
    """Every training target side by side, so batch mixing mixes them all alike.

    The class distribution ``[N, C]``, then with a VAD plan the standardised VAD (missing: 0)
    and its presence mask ``[N, 3 + 3]`` and the spherical regions ``[N, R]``.
    """
    soft = config.data.targets == "distribution"
    dist = distribution_matrix(train, classes, soft, allow_unlabelled=plan is not None)
    if plan is None:
        return dist, (len(classes), False, 0)
    values = vad_matrix(train).astype(np.float64)
    z = (values - np.asarray(plan["mean"])) / np.asarray(plan["std"])
    mask = np.isfinite(z)
    parts = [dist, np.nan_to_num(z).astype(np.float32), mask.astype(np.float32)]
    if plan["regions"]:
        unit = (values - np.asarray(plan["centre"])) / np.asarray(plan["half"])
        parts.append(sphere_regions(unit, plan["radius_edges"]))
    return np.concatenate(parts, axis=1), (len(classes), True, int(plan["regions"]))


def _split_targets(y: np.ndarray, layout: tuple[int, bool, int],
                   ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Undo :func:`_batch_targets` after mixing.

    A value counts only where every mixed item had it (mask 1); a class distribution or
    region row mixed with an item without one is dropped (zeros: the loss leaves it out).
    """
    classes, has_vad, regions = layout
    dist = y[:, :classes].copy()
    dist[np.abs(dist.sum(axis=1) - 1.0) > 1e-4] = 0.0
    if not has_vad:
        return dist, None, None
    vad = y[:, classes:classes + 3].copy()
    known = y[:, classes + 3:classes + 6] > 1.0 - 1e-6
    vad[~known] = np.nan
    region = None
    if regions:
        region = y[:, classes + 6:classes + 6 + regions].copy()
        region[~known.all(axis=1)] = 0.0
    return dist, vad, region


def _mean_ccc(predicted: np.ndarray | None, truth: np.ndarray,
              plan: Mapping[str, Any] | None) -> float:
    """Mean CCC over the plan's dimensions, each on the items that have it.

    Standardised outputs against standardised values (one affine map applied to both does not
    change CCC).
    """
    if predicted is None or not plan:
        return float("nan")
    values = []
    for k, name in enumerate(DIMENSIONS):
        have = np.isfinite(truth[:, k])
        if name in plan["dimensions"] and have.sum() >= 2:
            z = (truth[have, k] - plan["mean"][k]) / plan["std"][k]
            values.append(ccc(z, predicted[have, k]))
    return float(np.mean(values)) if values else float("nan")


def _onehot(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(labels), len(classes)), dtype=np.float32)
    for i, label in enumerate(labels):
        y[i, index[label]] = 1.0
    return y


def _ua(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    return 100.0 * unweighted_accuracy(np.asarray(y_true), np.asarray(y_pred))


def _running_mean(avg: dict[str, Any] | None, current: dict[str, Any], n: int) -> dict[str, Any]:
    """Fold one more state dict into a running mean of ``n`` earlier ones (floats only)."""
    if avg is None:
        return {k: v.detach().clone() for k, v in current.items()}
    for key, value in current.items():
        if value.is_floating_point():
            avg[key] += (value.detach() - avg[key]) / (n + 1)
        else:
            avg[key] = value.detach().clone()
    return avg


def _same_training(saved: Any, config: TrainConfig) -> bool:
    """Whether a checkpoint's config trains the network as ``config`` does.

    Keys added since take their defaults. The ``classic`` section is left out: a network's
    training never reads it (it sets the linear models, and a fused one is fitted after the
    networks), so a run that only adds or changes a fused logistic regression resumes the
    networks of a run without it.
    """
    if not isinstance(saved, dict):
        return False
    try:
        ours = config_from_dict(saved).to_dict()
    except (ConfigError, TypeError):
        return False
    theirs = config.to_dict()
    ours.pop("classic", None)
    theirs.pop("classic", None)
    return ours == theirs


def _tensor(y: Any, device: Any) -> Any:
    return torch.from_numpy(np.asarray(y, dtype=np.float32)).to(device)


def _step(network: Any, loss: Any, optimizer: Any, center_opt: Any, grad_clip: float,
          shared: Sequence[Any] = ()) -> None:
    """One optimiser step.

    ``shared``: loss parameters whose gradients torchrun's processes average (DDP averages
    the network's).
    """
    from .distributed import average_gradients

    optimizer.zero_grad()
    if center_opt is not None:
        center_opt.zero_grad()
    loss.backward()
    if shared:
        average_gradients(shared)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(
            [p for p in network.parameters() if p.requires_grad], grad_clip)
    optimizer.step()
    if center_opt is not None:
        center_opt.step()


def _crop_wave(wave: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    if len(wave) <= max_samples:
        return wave
    start = int(rng.integers(0, len(wave) - max_samples + 1))
    return wave[start : start + max_samples]


def _crop(feats: np.ndarray, max_frames: int, rng: np.random.Generator) -> np.ndarray:
    t = feats.shape[-2]
    if t <= max_frames:
        return feats
    start = int(rng.integers(0, t - max_frames + 1))
    return feats[..., start : start + max_frames, :]


def _encode(encoder: Any, waves: Sequence[np.ndarray], ndim: int) -> list[np.ndarray]:
    """Run the frontend's torch module on waveforms; return per-utterance valid frames."""
    batch, lengths = pad_waves(waves)
    device = device_of(encoder)
    with torch.inference_mode():
        feats, mask = encoder(batch.to(device), lengths.to(device))
    feats, mask = feats.cpu(), mask.cpu()
    out = []
    for i in range(len(waves)):
        t = int(mask[i].sum())
        f = feats[i, ..., :t, :].numpy()
        if f.ndim != ndim:
            raise EmovoxError(f"online features have {f.ndim} axes, cached ones {ndim}")
        out.append(f.astype(np.float32))
    return out
