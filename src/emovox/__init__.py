"""emovox: speech emotion recognition.

The public surface: :class:`Recognizer` (a trained model, with ``predict_signal``,
``predict_file``, ``predict_files`` and ``predict_folder``), its :class:`Prediction` and
:class:`Segment` records, the corpus :class:`Utterance` record, and the error types. Training,
corpora, protocols and metrics live in their modules (``emovox.train``, ``emovox.corpora``,
``emovox.folds``, ``emovox.evaluate``). Importing emovox does not import torch.

Example:
    >>> import emovox
    >>> recognizer = emovox.Recognizer.default()  # doctest: +SKIP
    >>> recognizer.predict_file("talk.wav").label  # doctest: +SKIP
    'neutral'
"""

from .errors import AudioError, ConfigError, CorpusError, EmovoxError, ProtocolError
from .inference import Recognizer
from .types import Prediction, Segment, Utterance

__version__ = "0.1.0"

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
]
