"""The HTTP service behind ``emovox serve``: an API and a web page around one :class:`Recognizer`.

Endpoints (described machine-readably at ``/openapi.json``; no ``/docs`` page: Swagger UI
would load its scripts from a CDN, which is blank offline):

- ``POST /v1/predict``: the audio as a multipart form field ``file`` (what an HTML form or
  ``curl -F file=@talk.wav`` sends) or as the raw request body (``curl --data-binary
  @talk.wav -H 'Content-Type: audio/wav'``; name it with ``?filename=talk.wav``). Query options
  ``timeline=true|false``, ``top_k=K`` and ``embeddings=true``. The answer is the same JSON
  record ``emovox predict --format jsonl`` prints (:meth:`Prediction.to_dict`), its ``path``
  being the uploaded file's name (``null`` for an unnamed raw body).
- ``POST /v1/explain``: the audio as for ``/v1/predict``; query option ``cues=false`` for
  saliency alone. The answer is the record ``emovox explain --format jsonl`` prints
  (:meth:`emovox.explain.Explanation.to_dict`).
- ``GET /health``: liveness and the current load.
- ``GET /v1/model``: the model's labels, sample rate, frontend, training summary, scores and
  the service's limits.
- ``GET /``: a page to upload a file or record from the microphone and see the result.

Every error is JSON ``{"error": "<one line>"}`` (plus ``"path"`` when an upload was named):

=====  ==================================================================================
 400   empty upload, malformed multipart body, client went away
 408   the client stopped sending the body for ``upload_timeout`` seconds
 413   upload larger than ``max_upload_mb``: refused from ``Content-Length`` before any of
       the body is read, or as soon as a streamed body passes the limit; then the connection
       is closed (after draining a small rest, see :func:`_drain`); or a recording longer
       than ``max_seconds``
 415   not an audio file (or a format libsndfile cannot read)
 422   a multipart form without a ``file`` field, a bad query option, unusable audio
       (truncated, no samples, NaN, too short)
 503   more than ``max_concurrent`` requests in the service; ``Retry-After`` says when to retry
 507   the server cannot store the upload (its temporary folder is full or missing)
=====  ==================================================================================

How a request flows: it is admitted only while fewer than ``max_concurrent`` requests are being
uploaded, queued or analysed (else 503 at once, before its body is read). The body is streamed
from the socket in the chunks the server receives and written straight to a temporary file, so
memory does not grow with the upload; bytes are counted as they arrive. The file's header is
checked (duration, format) and the analysis is queued on a pool of ``workers`` threads that share
the one recognizer (loaded once), so the event loop keeps serving other requests, ``/health``
included, while models run. The temporary file is deleted when the analysis is over.

The command line (``emovox serve``, in :mod:`emovox.cli`) builds its recognizer with
:meth:`Recognizer.load`, like ``emovox predict`` and ``listen``, so the service answers what
the CLI prints.

Example:
    >>> from emovox.inference import Recognizer
    >>> from emovox.serve import ServeSettings, create_app
    >>> app = create_app(Recognizer.default(), ServeSettings(max_upload_mb=20))
    >>> sorted(route.path for route in app.routes if "predict" in route.path)
    ['/v1/predict']

``run(app, host="127.0.0.1", port=8000)`` then serves it until interrupted.
"""

import asyncio
import contextlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import audio
from ._version import __version__
from .errors import ConfigError, EmovoxError, require

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .inference import Recognizer

__all__ = ["ServeSettings", "create_app", "run", "settings_line"]

log = logging.getLogger("emovox.serve")

#: Files of the web page (inside the package) that the app serves under ``/static/``.
WEB_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "pcm-worklet.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

_MB = 1024 * 1024

#: What is left of a refused request's body is read and discarded (so that clients which send
#: everything before they read get the answer) when it is at most this many bytes (and at most
#: the upload limit) and arrives within this many seconds; else the connection is just closed.
DRAIN_BYTES = 16 * _MB
DRAIN_SECONDS = 5.0
_NOT_AUDIO = "not an audio file"  # the audio module's wording for non-audio input


@dataclass(frozen=True)
class ServeSettings:
    """Limits and sizes of the service.

    Attributes:
        max_upload_mb: Largest request body accepted, in MiB (2**20 bytes).
        max_seconds: Longest recording accepted, in seconds (read from the file's header).
        max_concurrent: Requests admitted at once (uploading, waiting for a worker or being
            analysed); one more gets 503 with ``Retry-After``.
        workers: Threads running the recognizer in parallel. Each analysis already uses
            several torch threads, so 1 is the best choice on small machines.
        upload_timeout: Seconds the client may pause while sending a body before it gets 408.
        retry_after: Seconds a refused client is told to wait (``Retry-After`` header).
        temp_dir: Folder for the uploads' temporary files (``None``: the system's).
        model_path: The checkpoint served, to find its model card (``<name>.md`` or
            ``MODEL_CARD.md`` beside it) for ``/v1/model``.
    """

    max_upload_mb: float = 100.0
    max_seconds: float = 600.0
    max_concurrent: int = 64
    workers: int = 1
    upload_timeout: float = 60.0
    retry_after: int = 2
    temp_dir: str | None = None
    model_path: str | None = None

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0:
            raise ConfigError(f"max_upload_mb must be > 0 (got {self.max_upload_mb})")
        if not self.max_seconds > 0:
            raise ConfigError(f"max_seconds must be > 0 (got {self.max_seconds})")
        if self.max_concurrent < 1 or self.workers < 1:
            raise ConfigError(f"max_concurrent and workers must be >= 1 (got "
                              f"{self.max_concurrent} and {self.workers})")
        if not self.upload_timeout > 0 or self.retry_after < 0:
            raise ConfigError("upload_timeout must be > 0 and retry_after >= 0")

    @property
    def max_upload_bytes(self) -> int:
        """:attr:`max_upload_mb` in bytes."""
        return int(self.max_upload_mb * _MB)


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str, *, path: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())
        self.path = path
        self.headers = headers or {}


# --- reading uploads ---------------------------------------------------------------------------


def _safe_name(name: str | None) -> str | None:
    """A client-given file name as a plain base name on one line (``None`` if empty)."""
    if not name:
        return None
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(ch if ch.isprintable() else "?" for ch in base).strip()[:200]
    return base or None


def _suffix(name: str | None) -> str:
    """The extension of a file name, if it looks like one (kept on the temporary file)."""
    ext = os.path.splitext(name or "")[1].lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else ""


class _Upload:
    """Where one request's audio goes: a temporary file, created when the audio starts."""

    def __init__(self, temp_dir: str | None) -> None:
        self.temp_dir = temp_dir
        self.name: str | None = None
        self.path: str | None = None
        self.handle: IO[bytes] | None = None
        self.size = 0
        self.abandoned = threading.Event()  # set when the client disconnects

    def open(self, name: "str | None") -> None:
        self.name = _safe_name(name)
        try:
            fd, self.path = tempfile.mkstemp(prefix="emovox-upload-",
                                             suffix=_suffix(self.name), dir=self.temp_dir)
        except OSError as exc:
            raise _cannot_store(exc) from None
        self.handle = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        assert self.handle is not None
        try:
            self.handle.write(data)
        except OSError as exc:
            raise _cannot_store(exc) from None
        self.size += len(data)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def delete(self) -> None:
        self.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _cannot_store(exc: OSError) -> ApiError:
    return ApiError(507, f"the server cannot store the upload ({exc.strerror or exc})")


class _FormReader:
    """Streams a ``multipart/form-data`` body; the part named ``file`` goes to the upload."""

    def __init__(self, boundary: bytes, upload: _Upload, field: str = "file") -> None:
        from python_multipart.multipart import MultipartParser

        self.upload = upload
        self.field = field
        self.found = False
        self.finished = False
        self._in_file = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        callbacks: Any = {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }
        self.parser = MultipartParser(boundary, callbacks)

    def feed(self, data: bytes) -> None:
        from python_multipart.exceptions import MultipartParseError

        try:
            self.parser.write(data)
        except MultipartParseError as exc:
            raise ApiError(400, f"malformed multipart body ({exc})") from None

    def _part_begin(self) -> None:
        self._disposition = b""
        self._in_file = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == self.field and not self.found:
            self.found = self._in_file = True
            filename = options.get(b"filename")
            self.upload.open(filename.decode("utf-8", "replace") if filename else None)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.upload.write(data[start:end])

    def _part_end(self) -> None:
        self._in_file = False

    def _end(self) -> None:
        self.finished = True


async def _read_body(request: Any, sink: Callable[[bytes], None], limit: int,
                     timeout: float) -> None:
    """Pull the request body from the server chunk by chunk, counting bytes against ``limit``.

    Nothing is kept in memory beyond the chunk at hand: each goes to ``sink`` (a file write or
    the multipart parser). The count is checked before a chunk is used, so at most ``limit``
    bytes are ever accepted, whatever ``Content-Length`` said (or whether it was sent at all).
    How far the body was read is kept on ``request.state`` for :func:`_drain`.
    """
    request.state.body_received = 0
    request.state.body_complete = False
    while True:
        try:
            message = await asyncio.wait_for(request.receive(), timeout)
        except asyncio.TimeoutError:
            raise ApiError(408, f"upload stalled: no data for {timeout:g} s") from None
        if message["type"] == "http.disconnect":
            request.state.body_complete = True  # nothing more will come
            raise ApiError(400, "the client went away before the upload was complete")
        chunk = message.get("body", b"")
        request.state.body_received += len(chunk)
        if not message.get("more_body", False):
            request.state.body_complete = True
        if request.state.body_received > limit:
            raise _too_large(limit, "the body passed it while streaming")
        if chunk:
            sink(chunk)
        if request.state.body_complete:
            return


def _too_large(limit: int, how: str) -> ApiError:
    return ApiError(413, f"upload too large: the limit is {limit / _MB:g} MB ({how}; the "
                         f"server's --max-upload-mb)")


async def _drain(request: Any, budget: int, seconds: float) -> None:
    """Read and discard what is left of a refused request's body, within a budget.

    A client that sends its whole body before it reads the answer (curl without
    ``Expect: 100-continue``, most HTTP libraries) sees a refusal only if the server reads
    what it sends; if the server closes the connection on unread data, the client gets a
    connection reset instead. So the rest of the body is read and thrown away when it fits in
    ``budget`` bytes and ``seconds`` (a declared ``Content-Length`` that does not fit is not
    read at all). Memory stays flat either way; the connection is closed afterwards.
    """
    if getattr(request.state, "body_complete", False):
        return
    received = getattr(request.state, "body_received", 0)
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) - received > budget:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    drained = 0
    while drained < budget:
        try:
            message = await asyncio.wait_for(request.receive(), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return
        if message["type"] == "http.disconnect":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _refusal_class() -> Any:
    """The response class for errors: it drains a half-read body before it completes."""
    from starlette.responses import JSONResponse

    class Refusal(JSONResponse):
        """A JSON error that is sent at once, then drains the body (see :func:`_drain`)."""

        def __init__(self, content: Any, status_code: int, headers: dict[str, str],
                     request: Any, budget: int, seconds: float) -> None:
            self.request = request
            self.budget = budget
            self.seconds = seconds
            self.pending = not getattr(request.state, "body_complete", False)
            if self.pending:
                headers = {**headers, "Connection": "close"}
            super().__init__(content, status_code=status_code, headers=headers)

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if not self.pending:
                await super().__call__(scope, receive, send)
                return
            # The whole answer goes out first (its Content-Length is set), so a client that
            # reads while it sends sees it at once; then the rest of the body is drained.
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": self.body, "more_body": True})
            await _drain(self.request, self.budget, self.seconds)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return Refusal


# --- the app -----------------------------------------------------------------------------------


class _State:
    """What the app shares between requests: the recognizer, the worker pool, the load."""

    def __init__(self, recognizer: "Recognizer", settings: "ServeSettings") -> None:
        self.recognizer = recognizer
        self.settings = settings
        self.executor = ThreadPoolExecutor(max_workers=settings.workers,
                                           thread_name_prefix="emovox-infer")
        self.lock = threading.Lock()  # the app may be driven from several event loops in tests
        self.in_flight = 0
        self.running = 0
        self.served = 0
        self.text: Any = None  # the TextAnalyzer (ASR and MiniLM), built on first use
        self.text_lock = threading.Lock()

    def admit(self) -> bool:
        with self.lock:
            if self.in_flight >= self.settings.max_concurrent:
                return False
            self.in_flight += 1
            return True

    def release(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def text_analyzer(self, weight: float | None) -> Any:
        """A :class:`~emovox.text.TextAnalyzer` with this text weight (``None``: the model's).

        ASR and MiniLM (or the model's trained text classifier) are loaded once, on first use,
        and shared by every weight; without the ``text`` extra, the one-line missing-extra
        error.
        """
        from .text import TextAnalyzer

        with self.text_lock:  # not the admission lock: loading takes seconds
            if self.text is None:
                self.text = TextAnalyzer.for_model(self.recognizer.model, threads=1)
        if weight is None:
            return self.text
        return TextAnalyzer(self.recognizer.labels, text_weight=weight,
                            transcriber=self.text.transcriber, scorer=self.text.scorer,
                            rule=self.text.rule)

    def analyse(self, upload: _Upload, timeline: bool | None, top_k: int | None,
                embeddings: bool, with_text: bool = False,
                text_weight: float | None = None) -> dict[str, Any]:
        """Run the recognizer on an upload (in a worker thread); the JSON record.

        ``with_text``: also transcribe it and fuse a text score (``emovox predict
        --with-text``), with ``text_weight`` (``None``: the model's learned weight, else 0.3).
        """

        def work(path: str) -> dict[str, Any]:
            pred = self.recognizer.predict_file(path, timeline=timeline, top_k=top_k,
                                                embeddings=embeddings)
            if with_text:
                pred = self.text_analyzer(text_weight).add_text(pred)
            return replace(pred, path=upload.name).to_dict()

        return self.run(upload, work)

    def explain(self, upload: _Upload, cues: bool) -> dict[str, Any]:
        """Explain an upload (in a worker thread); the JSON record ``emovox explain`` gives.

        Without the ``explain`` extra the cues are left out and a note says so.
        """
        import importlib.util

        have = importlib.util.find_spec("parselmouth") is not None

        def work(path: str) -> dict[str, Any]:
            record = self.recognizer.explain_file(path, cues=cues and have).to_dict()
            record["path"] = upload.name
            if cues and not have:
                record["notes"].append("acoustic cues need the explain extra on the server "
                                       "(pip install 'emovox[explain]')")
            return record

        return self.run(upload, work)

    def run(self, upload: _Upload, work: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """Run ``work`` on an upload's file, counted in the load.

        A request whose client went away while it waited for a worker is skipped.
        """
        if upload.abandoned.is_set():
            raise ApiError(400, "the client went away before its turn came")
        with self.lock:
            self.running += 1
        try:
            assert upload.path is not None
            return work(upload.path)
        except EmovoxError as exc:
            raise _audio_error(exc, upload) from None
        finally:
            with self.lock:
                self.running -= 1
                self.served += 1


def _audio_error(exc: BaseException, upload: _Upload) -> ApiError:
    """An error about the uploaded audio, with the temporary path replaced by the upload's name."""
    message = " ".join(str(exc).split())
    shown = upload.name or "upload"
    if upload.path:
        message = message.replace(upload.path, shown)
    if not message.startswith(shown):
        message = f"{shown}: {message}"
    status = 415 if _NOT_AUDIO in message else 422
    return ApiError(status, message, path=upload.name)


def _model_card(recognizer: "Recognizer", settings: "ServeSettings") -> dict[str, Any]:
    """What ``/v1/model`` says: the model, its training and scores, and the service's limits.

    ``model_card`` is the short summary a checkpoint may carry (``info["model_card"]``, as the
    bundled model does); ``model_card_text`` the Markdown card found beside the checkpoint
    (``<name>.md`` or ``MODEL_CARD.md``), if any.
    """
    model = recognizer.model
    info = dict(getattr(model, "info", {}) or {})
    config = getattr(model, "config", None)
    card: dict[str, Any] = {
        "labels": list(recognizer.labels),
        "sample_rate": recognizer.sample_rate,
        "name": getattr(config, "name", None),
        "method": getattr(config, "method", None),
        "frontend": dict(getattr(model, "frontend_config", {}) or {}),
        "normalization": recognizer.mode,
        "scores": dict(getattr(model, "scores", {}) or {}),
        "training": {k: v for k, v in info.items()
                     if k in ("training_data", "n_train", "n_valid", "best_epoch", "finetuned")},
        "analysis": {"window_seconds": recognizer.window, "hop_seconds": recognizer.hop,
                     "timeline_after_seconds": recognizer.timeline_after},
        "limits": {"max_upload_mb": settings.max_upload_mb,
                   "max_seconds": settings.max_seconds,
                   "max_concurrent": settings.max_concurrent, "workers": settings.workers},
        "emovox_version": __version__,
        "model_card": info.get("model_card"),
        "model_card_text": None,
        "dimensions": _dimensions_card(info.get("vad")),
        # a model trained with text fusion: how it fuses what is said (`with_text=true`)
        "text_fusion": {k: info["text"].get(k) for k in ("rule", "weight", "source",
                                                          "embedder", "n_text")}
        if info.get("text") else None,
    }
    if settings.model_path:
        path = Path(settings.model_path)
        for candidate in (path.with_suffix(".md"), path.parent / "MODEL_CARD.md"):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                card["model_card_text"] = candidate.read_text(encoding="utf-8")
                break
    return card


def _dimensions_card(plan: Any) -> dict[str, Any] | None:
    """What a VAD-head model predicts, for plotting; ``None`` without a VAD head.

    Its dimensions and the range of each (the declared scale, else the training data's).
    """
    if not plan:
        return None
    centre, half = plan["centre"], plan["half"]
    names = ("valence", "arousal", "dominance")
    return {"names": list(plan["dimensions"]), "scale": plan.get("scale"),
            "range": {n: [centre[k] - half[k], centre[k] + half[k]] for k, n in enumerate(names)
                      if n in plan["dimensions"]}}


def _web_file(name: str) -> bytes:
    return resources.files("emovox").joinpath("web").joinpath(name).read_bytes()


_PREDICT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {"type": "object", "required": ["file"],
                       "properties": {"file": {"type": "string", "format": "binary"}}}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "audio/*": {"schema": {"type": "string", "format": "binary"}},
    },
}
_ERROR_SCHEMA = {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}, "path": {"type": "string"}}}}}
_PREDICT_ERRORS = {
    str(code): {"description": text, "content": _ERROR_SCHEMA} for code, text in [
        (400, "empty upload or malformed multipart body"),
        (408, "the upload stalled"),
        (413, "upload or recording over the limit"),
        (415, "not an audio file"),
        (422, "no 'file' field, bad option, or unusable audio"),
        (503, "too many requests at once; retry after Retry-After seconds"),
        (507, "the server has no room for the upload"),
    ]
}


def create_app(recognizer: "Recognizer", settings: "ServeSettings | None" = None) -> "FastAPI":
    """Build the FastAPI application serving one recognizer.

    Args:
        recognizer: The loaded model, shared by all requests (never reloaded).
        settings: Limits and sizes (default :class:`ServeSettings()`).

    Returns:
        The ASGI app; run it with :func:`run` or any ASGI server (one process: the model and
        the request limits live in it).

    Raises:
        MissingExtraError: Without fastapi and python-multipart (extra ``serve``).
    """
    require("fastapi", "serve")
    require("python_multipart", "serve")
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException

    settings = settings or ServeSettings()
    state = _State(recognizer, settings)
    card = _model_card(recognizer, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        state.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="emovox",
        version=__version__,
        summary="Speech emotion recognition: upload a recording, get its emotions.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: blank pages offline
        redoc_url=None,
    )
    app.state.emovox = state

    refusal = _refusal_class()
    drain_bytes = min(settings.max_upload_bytes, DRAIN_BYTES)

    def error_response(request: Request, status: int, body: dict[str, Any],
                       headers: dict[str, str] | None = None) -> JSONResponse:
        if request.method not in ("POST", "PUT", "PATCH"):
            request.state.body_complete = True
        response: JSONResponse = refusal(body, status, dict(headers or {}), request,
                                         drain_bytes, DRAIN_SECONDS)
        return response

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        body: dict[str, Any] = {"error": exc.message}
        if exc.path is not None:
            body["path"] = exc.path
        return error_response(request, exc.status, body, exc.headers)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(request, exc.status_code, {"error": str(exc.detail)},
                              dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def on_bad_option(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "query")
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(request, 422, {"error": "bad request option: " + "; ".join(parts)})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_web_file("index.html"))

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in WEB_FILES:
            raise ApiError(404, f"no such file: {_safe_name(name)}")
        return Response(_web_file(name), media_type=WEB_FILES[name],
                        headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/health", summary="Liveness and current load")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": card["name"], "labels": card["labels"],
                "in_flight": state.in_flight, "running": state.running,
                "served": state.served, "max_concurrent": settings.max_concurrent,
                "workers": settings.workers}

    @app.get("/v1/model", summary="The model served: labels, sample rate, model card, limits")
    async def model_info() -> dict[str, Any]:
        return card

    @app.post(
        "/v1/predict",
        summary="Recognise the emotion in one recording",
        description="Send the audio as multipart form field `file`, or as the raw request "
        "body (any format libsndfile reads: WAV, FLAC, OGG/Vorbis/Opus, MP3, ...). Returns the "
        "record `emovox predict --format jsonl` prints.",
        openapi_extra={"requestBody": _PREDICT_BODY},
        responses=_PREDICT_ERRORS,  # type: ignore[arg-type]
    )
    async def predict(
        request: Request,
        timeline: bool | None = Query(
            None, description="true: always return the timeline; false: never; absent: "
            "only for recordings longer than the model's timeline_after"),
        top_k: int | None = Query(None, ge=1, description="also list the K best emotions"),
        embeddings: bool = Query(False, description="include the model's embedding"),
        filename: str | None = Query(None, description="name of a raw-body upload"),
        with_text: bool = Query(False, description="also the transcript, a text emotion score "
                                "and the fused result (needs the `text` extra)"),
        text_weight: float | None = Query(None, ge=0.0, le=1.0, description="the text's "
                                          "weight in the fused result (default: the weight a "
                                          "text-fusion model learned, else 0.3)"),
    ) -> JSONResponse:
        if text_weight is not None and not with_text:
            return JSONResponse({"error": "text_weight needs with_text=true"}, status_code=400)
        if with_text:
            from .text import check_text_extra

            try:  # before the upload is read: a missing extra is the server's, said at once
                check_text_extra()
            except EmovoxError as exc:
                return JSONResponse({"error": str(exc)}, status_code=501)
        return await answer(request, filename, lambda upload: state.analyse(
            upload, timeline, top_k, embeddings, with_text, text_weight))

    @app.post(
        "/v1/explain",
        summary="Why a recording gets its emotion",
        description="The audio as for `/v1/predict`. Returns the record `emovox explain "
        "--format jsonl` prints: saliency over time per method, the salient regions, the "
        "acoustic cues there against neutral speech, and a sentence.",
        openapi_extra={"requestBody": _PREDICT_BODY},
        responses=_PREDICT_ERRORS,  # type: ignore[arg-type]
    )
    async def explain(
        request: Request,
        cues: bool = Query(True, description="measure the acoustic cues (false: saliency "
                           "only)"),
        filename: str | None = Query(None, description="name of a raw-body upload"),
    ) -> JSONResponse:
        return await answer(request, filename, lambda upload: state.explain(upload, cues))

    async def answer(request: Request, filename: str | None,
                     work: Callable[[_Upload], dict[str, Any]]) -> JSONResponse:
        """Receive an upload, check it, run ``work`` on a worker; its JSON answer."""
        limit = settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise _too_large(limit, f"Content-Length is {int(declared) / _MB:.1f} MB")
        if not state.admit():
            raise ApiError(503, f"busy: {settings.max_concurrent} requests are already in the "
                           "service; retry later",
                           headers={"Retry-After": str(settings.retry_after)})
        upload = _Upload(settings.temp_dir)
        job: asyncio.Future[dict[str, Any]] | None = None
        watcher: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        try:
            await _receive(request, upload, filename, limit, settings.upload_timeout)
            watcher = asyncio.ensure_future(_watch_disconnect(request, upload))
            await loop.run_in_executor(None, _check_audio, upload, settings.max_seconds)
            job = loop.run_in_executor(state.executor, work, upload)
            return JSONResponse(await job)
        finally:
            if watcher is not None:
                watcher.cancel()

            def finish(_: Any = None) -> None:
                upload.delete()
                state.release()

            if job is not None and not job.done():  # cancelled while a worker holds the file
                job.add_done_callback(finish)
            else:
                finish()

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s: %r", request.url.path, exc)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server "
                             "log"}, status_code=500)

    return app


async def _receive(request: Any, upload: _Upload, filename: str | None, limit: int,
                   timeout: float) -> None:
    """Stream the request body into ``upload`` (multipart field ``file``, or the raw body)."""
    from python_multipart.multipart import parse_options_header

    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    if ctype == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise ApiError(400, "malformed multipart body (no boundary in Content-Type)")
        form = _FormReader(boundary, upload)
        await _read_body(request, form.feed, limit, timeout)
        upload.close()
        if not form.finished and form.found:
            raise ApiError(400, "malformed multipart body (it ends before its closing boundary)")
        if not form.found:
            raise ApiError(422, "the multipart form has no 'file' field (send the audio as "
                                "form field 'file', or as the raw request body)")
    else:
        upload.open(filename)
        await _read_body(request, upload.write, limit, timeout)
        upload.close()
    if upload.size == 0:
        raise ApiError(400, "empty upload: no audio bytes received", path=upload.name)


async def _watch_disconnect(request: Any, upload: _Upload) -> None:
    """Mark the upload abandoned if the client disconnects before it gets its answer.

    Once the body is read, the server's next message is ``http.disconnect``, sent when the
    client goes away (or when the response is complete, by which time nobody looks).
    """
    with contextlib.suppress(Exception):
        message = await request.receive()
        if message["type"] == "http.disconnect":
            upload.abandoned.set()


def _check_audio(upload: _Upload, max_seconds: float) -> audio.AudioInfo:
    """The upload's header: refuse non-audio and recordings over the duration limit."""
    assert upload.path is not None
    try:
        meta = audio.info(upload.path)
    except EmovoxError as exc:
        raise _audio_error(exc, upload) from None
    if meta.seconds > max_seconds:
        raise ApiError(413, f"{upload.name or 'upload'}: recording is {meta.seconds:.1f} s long, "
                            f"over the {max_seconds:g} s limit (the server's --max-seconds)",
                       path=upload.name)
    return meta


# --- running it --------------------------------------------------------------------------------


def run(app: Any, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve ``app`` with uvicorn in this process until interrupted.

    Raises:
        MissingExtraError: Without uvicorn (extra ``serve``).
    """
    require("uvicorn", "serve")
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=True,
                timeout_graceful_shutdown=5)


def settings_line(settings: "ServeSettings") -> str:
    """Settings as ``key=value`` pairs on one line (for the start-up message)."""
    return " ".join(f"{k}={v}" for k, v in asdict(settings).items() if v is not None)
