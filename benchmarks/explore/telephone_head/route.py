"""Exploration: a telephone-band head chosen by a band detector (issue #13's telephone drop).

For each fold: the default recipe's model on clean and on telephone test audio, and a second
model of the same recipe trained on the telephone-channel versions of every training version,
tested on telephone audio. Also each test recording's band-energy ratio, clean and telephone.
"""
import json
import sys
from pathlib import Path

import numpy as np
import scipy.signal as sps

from emovox.conditions import telephone
from emovox.config import frontend_options, load_recipe
from emovox.corpora import load_corpus
from emovox.dataset import FeatureBank, assess_utterances
from emovox.features import build_frontend
from emovox.folds import make_folds
from emovox.labels import ordered
from emovox.train import fit

corpus, root, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
folds_sel = [int(x) for x in sys.argv[4].split(",")] if len(sys.argv) > 4 else None
out.mkdir(parents=True, exist_ok=True)
config = load_recipe("default")
utts = sorted(load_corpus(corpus, root, classes="default7"), key=lambda u: u.id)
labels = list(ordered(str(u.label) for u in utts))
protocol = {"emodb": "emodb_loso", "ravdess": "ravdess6"}[corpus]
frontend = build_frontend(frontend_options(config))


class TelBank(FeatureBank):
    """Every version heard through the telephone channel (its 'clean' is the phone call)."""

    def wave(self, utt, speed=1.0):  # noqa: ANN001
        key = (utt.id, 1.0)
        if key not in self._waves:
            x = super().wave(utt, 1.0)
            self._waves[key] = telephone(x, self.frontend.sample_rate)
        return super().wave(utt, speed)


bank = FeatureBank(frontend, utts, out / "cache" / "plain", "float16", True)
tbank = TelBank(frontend, utts, out / "cache" / "phone", "float16", True)


def ratio(x, sr=16000):
    f, p = sps.welch(x, sr, nperseg=512)
    hi = p[(f >= 3800) & (f <= 7800)].sum()
    band = p[(f >= 300) & (f <= 3400)].sum()
    return float(10 * np.log10(hi / band + 1e-12))


def ua(probs, test):
    y = np.array([labels.index(str(u.label)) for u in test])
    pred = probs.argmax(1)
    return 100 * float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


folds = make_folds(utts, protocol, select=folds_sel)
for fold in folds:
    path = out / f"fold_{fold.index}.json"
    if path.exists():
        continue
    m = fit(config, fold.train, fold.valid, labels=labels, extra=fold.test, frontend=frontend,
            bank=bank, progress=False)
    mt = fit(config, fold.train, fold.valid, labels=labels, extra=fold.test, frontend=frontend,
             bank=tbank, progress=False)
    rec = {"fold": fold.index,
           "clean_default": ua(assess_utterances(m, bank, fold.test).probabilities, fold.test),
           "tel_default": ua(assess_utterances(m, tbank, fold.test).probabilities, fold.test),
           "tel_telhead": ua(assess_utterances(mt, tbank, fold.test).probabilities, fold.test),
           "clean_telhead": ua(assess_utterances(mt, bank, fold.test).probabilities, fold.test),
           "ratio_clean": [ratio(bank.wave(u)) for u in fold.test],
           "ratio_tel": [ratio(tbank.wave(u)) for u in fold.test]}
    path.write_text(json.dumps(rec))
    print(fold.index, {k: round(v, 1) for k, v in rec.items() if not k.startswith("ratio")},
          f"ratio clean min {min(rec['ratio_clean']):.1f} tel max {max(rec['ratio_tel']):.1f}",
          flush=True)
