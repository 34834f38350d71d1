"""openSMILE acoustic features (eGeMAPS, ComParE) as an emovox frontend.

The classic hand-crafted baselines of speech emotion recognition: the extended Geneva Minimalistic
Acoustic Parameter Set (eGeMAPS v02, 88 functionals / 25 low-level descriptors) and the
ComParE 2016 set (6373 functionals / 65 low-level descriptors), computed by audEERING's
openSMILE through the ``opensmile`` Python package.

Licence: openSMILE is free for research and education only; its licence forbids commercial use.
That is why it is an optional extra (``pip install 'emovox[opensmile]'``) and nothing else in
emovox depends on it.

Example:
    >>> import numpy as np
    >>> from emovox.features.opensmile import OpenSmile
    >>> frontend = OpenSmile("eGeMAPSv02", "functionals")
    >>> frontend(np.zeros(16000, dtype=np.float32)).shape
    (1, 88)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emovox.errors import AudioError, ConfigError, require

#: Feature dimension per (feature set, level).
DIMS: dict[tuple[str, str], int] = {
    ("eGeMAPSv02", "functionals"): 88,
    ("eGeMAPSv02", "lld"): 25,
    ("ComParE_2016", "functionals"): 6373,
    ("ComParE_2016", "lld"): 65,
}

# emovox level name -> opensmile.FeatureLevel member name.
_LEVELS = {"functionals": "Functionals", "lld": "LowLevelDescriptors"}


class OpenSmile:
    """An openSMILE feature set as a frontend: signal -> ``float32 [time, feat]``.

    Functionals summarise the whole clip in one row (``time = 1``); low-level descriptors (LLDs)
    give one row per 10 ms frame. openSMILE returns NaN for a few descriptors on degenerate input
    (a segment shorter than the analysis window, for example) and can return +-inf; these are
    replaced by 0 so downstream normalisation and models never see non-finite values.

    Attributes:
        name: Frontend family name, ``"opensmile"``.
        sample_rate: Expected input rate in Hz (16000 by default).
        dim: Features per frame (88 / 6373 functionals, 25 / 65 LLDs).
        frame_seconds: Hop between output frames in seconds: 0.01 for LLDs; 0.0 for functionals,
            the emovox convention for "one frame covering the whole clip".
    """

    name = "opensmile"

    def __init__(
        self, feature_set: str = "eGeMAPSv02", level: str = "functionals", sample_rate: int = 16000
    ) -> None:
        """Check the options and the ``opensmile`` package; the extractor is built on first use.

        Args:
            feature_set: ``"eGeMAPSv02"`` or ``"ComParE_2016"``.
            level: ``"functionals"`` (one row per clip) or ``"lld"`` (one row per 10 ms).
            sample_rate: Rate of the signals passed in, Hz (openSMILE's windows are in seconds,
                so any rate works; emovox uses 16000 throughout).

        Raises:
            ConfigError: If ``feature_set`` or ``level`` is unknown.
            MissingExtraError: If the ``opensmile`` package is not installed.
        """
        if (feature_set, level) not in DIMS:
            sets = sorted({s for s, _ in DIMS})
            raise ConfigError(
                f"unknown openSMILE feature_set/level {feature_set!r}/{level!r}: "
                f"feature_set is one of {sets}, level one of {sorted(_LEVELS)}"
            )
        self._opensmile = require("opensmile", "opensmile")
        self.feature_set = feature_set
        self.level = level
        self.sample_rate = int(sample_rate)
        self.dim = DIMS[(feature_set, level)]
        self.frame_seconds = 0.01 if level == "lld" else 0.0
        self._smile: Any = None  # built lazily: creating it parses the config and is slow

    def config(self) -> dict[str, Any]:
        """Plain JSON values that determine the output (the feature-cache key).

        ``build_frontend(config)`` rebuilds an equal frontend. The ``opensmile`` package version
        is not part of the key: its feature sets are frozen configuration files.
        """
        return {
            "name": self.name,
            "feature_set": self.feature_set,
            "level": self.level,
            "sample_rate": self.sample_rate,
        }

    @property
    def feature_names(self) -> list[str]:
        """The openSMILE name of each feature column, in output order (length ``dim``)."""
        return list(self._extractor().feature_names)

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        """Extract the features of one clip.

        Args:
            signal: Mono waveform, float, shape ``[samples]``, at :attr:`sample_rate`.

        Returns:
            ``float32 [1, dim]`` for functionals, ``float32 [frames, dim]`` for LLDs (one frame per
            10 ms), with NaN and +-inf replaced by 0.

        Raises:
            AudioError: If the signal is not one-dimensional or is empty.
        """
        signal = np.asarray(signal, dtype=np.float32)
        if signal.ndim != 1:
            raise AudioError(f"openSMILE needs a mono signal [samples], got shape {signal.shape}")
        if signal.size == 0:
            raise AudioError("openSMILE cannot process an empty signal")
        table = self._extractor().process_signal(signal, self.sample_rate)
        features = np.nan_to_num(table.to_numpy(dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        return np.ascontiguousarray(features, dtype=np.float32)

    def __repr__(self) -> str:
        return f"OpenSmile(feature_set={self.feature_set!r}, level={self.level!r})"

    def __getstate__(self) -> dict[str, Any]:
        # The openSMILE extractor and the module object do not pickle; data-loader workers rebuild
        # them on first use.
        state = self.__dict__.copy()
        state["_smile"] = None
        state["_opensmile"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._opensmile = require("opensmile", "opensmile")

    def _extractor(self) -> Any:
        """The one ``opensmile.Smile`` of this instance, created on first use."""
        if self._smile is None:
            opensmile = self._opensmile
            self._smile = opensmile.Smile(
                feature_set=getattr(opensmile.FeatureSet, self.feature_set),
                feature_level=getattr(opensmile.FeatureLevel, _LEVELS[self.level]),
            )
        return self._smile
