"""The exceptions emovox raises for bad input.

Every error a user can cause (a missing file, a wrong corpus root, an unknown option) is an
:class:`EmovoxError` whose message is one line that says what is wrong and, where it helps, what
to do. The CLI prints that line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class EmovoxError(Exception):
    """Base class of every user-facing emovox error (message: one line)."""


class AudioError(EmovoxError):
    """An audio file or signal cannot be used: missing, empty, truncated, non-audio, too long."""


class CorpusError(EmovoxError):
    """A corpus root does not have the expected layout, or a label file cannot be parsed."""


class ProtocolError(EmovoxError):
    """A cross-validation protocol cannot be built, or its folds are not speaker-disjoint."""


class ConfigError(EmovoxError):
    """A recipe, option or ``--set key=value`` override is unknown or has a wrong value."""


class MissingExtraError(EmovoxError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this feature needs the optional package '{module}': "
            f"pip install 'emovox[{extra}]'"
        )
        self.module = module
        self.extra = extra


def require(module: str, extra: str):  # noqa: ANN201 - returns a module
    """Import an optional dependency lazily.

    Args:
        module: The module to import, e.g. ``"torch"``.
        extra: The emovox extra that installs it, named in the error.

    Returns:
        The imported module.

    Raises:
        MissingExtraError: If the module is not installed.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc
