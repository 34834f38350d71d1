"""emovox: speech emotion recognition.

The public surface: :class:`Recognizer` (a trained model, with ``predict_signal``,
``predict_file``, ``predict_files`` and ``predict_folder``), its :class:`Prediction` and
:class:`Segment` records, the corpus :class:`Utterance` record, and the error types. Training,
corpora, protocols and metrics live in their modules (``emovox.config``, ``emovox.train``,
``emovox.corpora``, ``emovox.folds``, ``emovox.evaluate``); the README's "How the code is
arranged" shows the stages. Importing emovox does not import torch.

Example:
    >>> import emovox
    >>> recognizer = emovox.Recognizer.default()
    >>> prediction = recognizer.predict_file(emovox.example_path())
    >>> prediction.label in recognizer.labels, round(sum(prediction.probabilities.values()), 6)
    (True, 1.0)
"""

from ._version import __version__
from .errors import AudioError, ConfigError, CorpusError, EmovoxError, ProtocolError
from .inference import Recognizer, example_path
from .types import Prediction, Segment, Utterance

__all__ = [
    "AudioError",
    "ConfigError",
    "CorpusError",
    "EmovoxError",
    "Prediction",
    "ProtocolError",
    "Recognizer",
    "Segment",
    "Utterance",
    "__version__",
    "example_path",
]
