"""`emovox serve`: the HTTP API, its limits and error paths (tiny model, offline).

In-process tests drive the app through Starlette's TestClient, httpx's ASGI transport or a bare
ASGI call (to count exactly how much of a body the app pulls). The load tests run the real
server (``python -m emovox serve``) in a subprocess on 127.0.0.1: 32 concurrent uploads, a text
file sent as audio, and a 600 MB upload refused without the server's memory growing.
"""

import asyncio
import contextlib
import json
import select
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from emovox.cli import main as cli_main  # noqa: E402
from emovox.errors import ConfigError  # noqa: E402
from emovox.inference import Recognizer  # noqa: E402
from emovox.serve import ServeSettings, create_app  # noqa: E402
from test_inference import SR, tiny_checkpoint, voice  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "emovox" / "data" / "example.wav"
MB = 1024 * 1024


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tone_corpus):
    return tiny_checkpoint(tmp_path_factory, tone_corpus)


@pytest.fixture(scope="module")
def rec(tiny_model):
    return Recognizer.from_checkpoint(tiny_model, window=1.0, hop=0.5, timeline_after=6.0)


@pytest.fixture()
def uploads(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


def make_client(rec, uploads, **settings):
    app = create_app(rec, ServeSettings(temp_dir=str(uploads), **settings))
    return TestClient(app, raise_server_exceptions=False)


def wav_bytes(signal, tmp_path, name="clip.wav"):
    path = tmp_path / name
    sf.write(path, signal, SR)
    return path.read_bytes()


def one_line_error(response, status):
    assert response.status_code == status, response.text
    doc = response.json()
    assert set(doc) <= {"error", "path"} and doc["error"]
    assert "\n" not in doc["error"]
    return doc["error"]


# --- the endpoints ---------------------------------------------------------------------------


def test_health_model_docs_and_page(rec, uploads):
    client = make_client(rec, uploads, max_upload_mb=3)
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["in_flight"] == 0
    model = client.get("/v1/model").json()
    assert model["labels"] == list(rec.labels) and model["sample_rate"] == 16000
    assert model["frontend"]["name"] == "logmel" and model["limits"]["max_upload_mb"] == 3
    assert model["training"]["n_train"] == 36
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "application/octet-stream" in body
    params = {p["name"] for p in spec["paths"]["/v1/predict"]["post"]["parameters"]}
    assert {"timeline", "top_k"} <= params
    # no page that needs a CDN: offline it would be blank
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="file"' in page.text and 'id="record"' in page.text
    for name in ("app.js", "pcm-worklet.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    one_line_error(client.get("/static/..%2Fserve.py"), 404)
    one_line_error(client.get("/v1/predict"), 405)
    one_line_error(client.get("/nowhere"), 404)


def test_model_card_summary_and_text(rec, uploads, tmp_path, monkeypatch):
    monkeypatch.setitem(rec.model.info, "model_card", {"name": "tones", "licence": "CC0"})
    (tmp_path / "MODEL_CARD.md").write_text("# Tones\n\nA test model.\n")
    app = create_app(rec, ServeSettings(model_path=str(tmp_path / "model.pt")))
    doc = TestClient(app).get("/v1/model").json()
    assert doc["model_card"] == {"name": "tones", "licence": "CC0"}
    assert doc["model_card_text"].startswith("# Tones")
    assert doc["text_fusion"] is None  # trained without text
    monkeypatch.setitem(rec.model.info, "text", {"rule": "product", "weight": 0.35,
                                                 "source": "asr", "head": {"coef": []}})
    app = create_app(rec, ServeSettings(model_path=str(tmp_path / "model.pt")))
    doc = TestClient(app).get("/v1/model").json()
    assert doc["text_fusion"]["rule"] == "product" and doc["text_fusion"]["weight"] == 0.35
    assert "head" not in doc["text_fusion"]


def test_predict_gives_the_record_of_emovox_predict(tiny_model, uploads, capsys):
    rec = Recognizer.from_checkpoint(tiny_model)  # the CLI's default analysis options
    client = make_client(rec, uploads)
    with open(EXAMPLE, "rb") as handle:
        served = client.post("/v1/predict?top_k=2", files={"file": ("example.wav", handle)})
    assert served.status_code == 200, served.text
    assert cli_main(["predict", str(EXAMPLE), "--model", str(tiny_model), "--format", "jsonl",
                     "--top-k", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert served.json() == {**printed, "path": "example.wav"}
    assert served.json()["label"] in rec.labels and len(served.json()["top_k"]) == 2
    assert list(uploads.iterdir()) == []  # the temporary file is gone


def test_explain_gives_the_record_of_emovox_explain(tiny_model, uploads, capsys, tmp_path):
    rec = Recognizer.from_checkpoint(tiny_model)
    client = make_client(rec, uploads)
    with open(EXAMPLE, "rb") as handle:
        served = client.post("/v1/explain?cues=false",
                             files={"file": ("example.wav", handle)})
    assert served.status_code == 200, served.text
    assert cli_main(["explain", str(EXAMPLE), "--model", str(tiny_model), "--format", "jsonl",
                     "--no-cues"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert served.json() == {**printed, "path": "example.wav"}
    assert served.json()["saliency"]["occlusion"]["values"]
    assert list(uploads.iterdir()) == []
    # bad audio gets the same one-line errors as /v1/predict
    text = client.post("/v1/explain", content=b"not audio" * 100,
                       headers={"Content-Type": "audio/wav"})
    assert "not" in one_line_error(text, 415)
    quiet = client.post("/v1/explain?filename=quiet.wav", content=wav_bytes(
        np.zeros(SR, dtype=np.float32), tmp_path, "quiet.wav"),
        headers={"Content-Type": "audio/wav"})
    assert "no speech to explain" in one_line_error(quiet, 422)


def test_raw_body_filename_timeline_and_embeddings(rec, uploads):
    client = make_client(rec, uploads)
    data = EXAMPLE.read_bytes()
    doc = client.post("/v1/predict?filename=dir/take%201.wav&timeline=true&embeddings=1",
                      content=data, headers={"Content-Type": "audio/wav"}).json()
    assert doc["path"] == "take 1.wav" and doc["timeline"] and len(doc["embedding"]) == 16
    expected = rec.predict_file(EXAMPLE, timeline=True, embeddings=True).to_dict()
    assert doc == {**expected, "path": "take 1.wav"}
    # No name, any content type (curl --data-binary sends a url-encoded one).
    plain = client.post("/v1/predict", content=data,
                        headers={"Content-Type": "application/x-www-form-urlencoded"}).json()
    assert plain["path"] is None and "timeline" not in plain
    assert list(uploads.iterdir()) == []


@pytest.mark.parametrize("fmt,subtype", [("FLAC", None), ("OGG", "VORBIS"),
                                         ("MP3", "MPEG_LAYER_III")])
def test_compressed_formats_without_a_name(rec, uploads, fmt, subtype):
    import io

    buffer = io.BytesIO()
    try:
        sf.write(buffer, voice(300, 1.5), SR, format=fmt, subtype=subtype)
    except (sf.LibsndfileError, TypeError, ValueError):
        pytest.skip(f"this libsndfile cannot write {fmt}")
    doc = make_client(rec, uploads).post("/v1/predict", content=buffer.getvalue()).json()
    assert doc["label"] in rec.labels and doc["duration"] == pytest.approx(1.5, abs=0.06)


def test_long_recordings_get_a_timeline(rec, uploads, tmp_path):
    client = make_client(rec, uploads)
    long = np.concatenate([voice(300, 4.0, seed=1), np.zeros(SR, np.float32),
                           voice(120, 3.0, seed=2)])
    data = wav_bytes(long, tmp_path)
    doc = client.post("/v1/predict", files={"file": ("long.wav", data)}).json()
    assert doc["duration"] == pytest.approx(8.0) and len(doc["timeline"]) > 5
    assert any(not seg["speech"] for seg in doc["timeline"])
    off = client.post("/v1/predict?timeline=false", files={"file": ("long.wav", data)}).json()
    assert "timeline" not in off and off["label"] == doc["label"]


# --- error paths -----------------------------------------------------------------------------


def test_text_file_sent_as_audio_is_refused_with_one_line(rec, uploads):
    client = make_client(rec, uploads)
    text = b"this is not audio\n" * 50
    message = one_line_error(
        client.post("/v1/predict", files={"file": ("notes.wav", text)}), 415)
    assert message == "notes.wav: not an audio file or unsupported format"
    message = one_line_error(client.post("/v1/predict", content=text), 415)
    assert message.startswith("upload: not an audio file")
    assert list(uploads.iterdir()) == []


def test_empty_missing_malformed_and_bad_options(rec, uploads, tmp_path):
    client = make_client(rec, uploads)
    assert "empty upload" in one_line_error(client.post("/v1/predict"), 400)
    assert "empty upload" in one_line_error(
        client.post("/v1/predict", files={"file": ("a.wav", b"")}), 400)
    assert "no 'file' field" in one_line_error(
        client.post("/v1/predict", files={"audio": ("a.wav", EXAMPLE.read_bytes())}), 422)
    assert "no 'file' field" in one_line_error(
        client.post("/v1/predict", data={"note": "hello"}, files={"other": ("x", b"")}), 422)
    cut = (b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
           + EXAMPLE.read_bytes()[:5000])
    assert "malformed multipart" in one_line_error(client.post(
        "/v1/predict", content=cut,
        headers={"Content-Type": "multipart/form-data; boundary=xyz"}), 400)
    assert "no boundary" in one_line_error(client.post(
        "/v1/predict", content=b"x", headers={"Content-Type": "multipart/form-data"}), 400)
    assert "top_k" in one_line_error(client.post("/v1/predict?top_k=0", content=b"x"), 422)
    assert "timeline" in one_line_error(client.post("/v1/predict?timeline=maybe"), 422)
    truncated = EXAMPLE.read_bytes()[:30000]
    assert "truncated" in one_line_error(
        client.post("/v1/predict", files={"file": ("cut.wav", truncated)}), 422)
    short = wav_bytes(voice(200, 0.02), tmp_path)
    one_line_error(client.post("/v1/predict", files={"file": ("short.wav", short)}), 422)
    assert list(uploads.iterdir()) == []


def test_recording_over_the_duration_limit(rec, uploads):
    client = make_client(rec, uploads, max_seconds=2.0)
    message = one_line_error(
        client.post("/v1/predict", files={"file": ("example.wav", EXAMPLE.read_bytes())}), 413)
    assert message == ("example.wav: recording is 5.0 s long, over the 2 s limit "
                       "(the server's --max-seconds)")


FORM_HEAD = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
             b"Content-Type: audio/wav\r\n\r\n")


def asgi_post(app, headers, total_bytes, chunk=256 * 1024, prefix=b""):
    """POST ``prefix`` and zeros, ``total_bytes`` in all, straight to the ASGI app, by chunks.

    Returns ``(status, headers, body, pulled)``, ``pulled`` being the body bytes the app asked
    for: the body is produced lazily, so a refused upload is never generated in full.
    """
    pulled = 0
    block = bytes(chunk)
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        if pulled >= total_bytes:
            await asyncio.sleep(3600)  # a client that sent everything waits for the answer
        size = min(chunk, total_bytes - pulled)
        body = (prefix + block)[:size] if pulled == 0 else block[:size]
        pulled += size
        return {"type": "http.request", "body": body, "more_body": pulled < total_bytes}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/predict",
             "raw_path": b"/v1/predict", "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "state": {}}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), json.loads(body), pulled


def test_too_large_by_content_length_is_refused_before_any_byte(rec, uploads):
    app = create_app(rec, ServeSettings(max_upload_mb=1, temp_dir=str(uploads)))
    status, headers, doc, pulled = asgi_post(
        app, {"Content-Type": "audio/wav", "Content-Length": str(600 * MB)}, 600 * MB)
    assert status == 413 and pulled == 0
    assert doc["error"].startswith("upload too large: the limit is 1 MB (Content-Length is 600")
    assert headers[b"connection"] == b"close"
    assert list(uploads.iterdir()) == []


@pytest.mark.parametrize("form", [False, True])
def test_too_large_while_streaming_stops_reading(rec, uploads, form):
    limit = 1 * MB
    app = create_app(rec, ServeSettings(max_upload_mb=1, temp_dir=str(uploads)))
    kind = "multipart/form-data; boundary=b" if form else "application/octet-stream"
    prefix = FORM_HEAD if form else b""
    # No Content-Length (chunked): the app counts while it streams.
    status, headers, doc, pulled = asgi_post(app, {"Content-Type": kind}, 600 * MB,
                                             prefix=prefix)
    assert status == 413 and "passed it while streaming" in doc["error"]
    # It read past the limit by at most one chunk, then drained about the limit more.
    assert pulled <= 2 * limit + 2 * 256 * 1024
    assert headers[b"connection"] == b"close"
    assert list(uploads.iterdir()) == []
    # A body just over the limit is drained, so that clients that send before they read
    # get the answer; and a body within the limit is accepted.
    status, _, doc, pulled = asgi_post(app, {"Content-Type": kind}, limit + 300 * 1024,
                                       prefix=prefix)
    assert status == 413 and pulled == limit + 300 * 1024


def test_503_when_the_queue_is_full_and_the_loop_stays_free(rec, uploads, monkeypatch):
    gate = threading.Event()
    real = rec.predict_file

    def slow(path, **options):
        assert gate.wait(20)
        return real(path, **options)

    monkeypatch.setattr(rec, "predict_file", slow)
    app = create_app(rec, ServeSettings(max_concurrent=2, workers=1, retry_after=7,
                                        temp_dir=str(uploads)))
    state = app.state.emovox
    data = EXAMPLE.read_bytes()

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            def post():
                return client.post("/v1/predict", files={"file": ("a.wav", data)})

            first = asyncio.create_task(post())
            while state.running < 1:  # the only worker is now blocked in the model
                await asyncio.sleep(0.01)
            second = asyncio.create_task(post())  # admitted, waits for the worker
            while state.in_flight < 2:
                await asyncio.sleep(0.01)
            refused = await post()
            health = await client.get("/health")  # the event loop is not blocked
            gate.set()
            return refused, health, await first, await second, await post()

    refused, health, first, second, later = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert "busy" in one_line_error(refused, 503)
    assert refused.headers["retry-after"] == "7"
    assert health.status_code == 200 and health.json()["running"] == 1
    assert health.json()["in_flight"] == 2
    assert [r.status_code for r in (first, second, later)] == [200, 200, 200]
    assert state.in_flight == 0 and list(uploads.iterdir()) == []


def test_limit_of_one_request(rec, uploads, monkeypatch):
    gate = threading.Event()
    real = rec.predict_file
    monkeypatch.setattr(rec, "predict_file",
                        lambda path, **o: (gate.wait(20), real(path, **o))[1])
    app = create_app(rec, ServeSettings(max_concurrent=1, temp_dir=str(uploads)))

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = asyncio.create_task(
                client.post("/v1/predict", content=EXAMPLE.read_bytes()))
            while app.state.emovox.in_flight < 1:
                await asyncio.sleep(0.01)
            refused = await client.post("/v1/predict", content=EXAMPLE.read_bytes())
            gate.set()
            return refused, await first

    refused, first = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert refused.status_code == 503 and "retry-after" in refused.headers
    assert first.status_code == 200


def test_a_client_that_leaves_while_queued_is_skipped(rec, uploads, monkeypatch):
    gate = threading.Event()
    real = rec.predict_file
    calls = []

    def slow(path, **options):
        calls.append(path)
        assert gate.wait(20)
        return real(path, **options)

    monkeypatch.setattr(rec, "predict_file", slow)
    app = create_app(rec, ServeSettings(workers=1, temp_dir=str(uploads)))
    state = app.state.emovox
    data = EXAMPLE.read_bytes()

    def call(leaves):
        sent = []
        messages = [{"type": "http.request", "body": data, "more_body": False}]

        async def receive():
            if messages:
                return messages.pop()
            if leaves:
                return {"type": "http.disconnect"}
            await asyncio.sleep(3600)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/v1/predict",
                 "raw_path": b"/v1/predict", "query_string": b"", "root_path": "",
                 "headers": [(b"content-type", b"audio/wav")], "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 80), "state": {}}
        return app(scope, receive, send), sent

    async def scenario():
        first, first_sent = call(leaves=False)
        first_task = asyncio.ensure_future(first)
        while state.running < 1:
            await asyncio.sleep(0.01)
        second, second_sent = call(leaves=True)
        second_task = asyncio.ensure_future(second)
        while state.in_flight < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the second client is gone while it waits for the worker
        gate.set()
        await asyncio.gather(first_task, second_task)
        return first_sent[0]["status"], second_sent[0]["status"]

    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == (200, 400)
    assert len(calls) == 1 and state.in_flight == 0 and list(uploads.iterdir()) == []


def test_a_failing_model_gives_500_and_the_service_goes_on(rec, uploads, monkeypatch):
    client = make_client(rec, uploads)
    real = rec.predict_file
    calls = []

    def flaky(path, **options):
        calls.append(path)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return real(path, **options)

    monkeypatch.setattr(rec, "predict_file", flaky)
    files = {"file": ("a.wav", EXAMPLE.read_bytes())}
    assert "internal error" in one_line_error(client.post("/v1/predict", files=files), 500)
    assert client.post("/v1/predict", files=files).status_code == 200
    assert list(uploads.iterdir()) == []


def test_nowhere_to_store_the_upload(rec, tmp_path):
    client = make_client(rec, tmp_path / "missing-folder")
    message = one_line_error(client.post("/v1/predict", content=b"RIFF"), 507)
    assert message.startswith("the server cannot store the upload")


def test_settings_are_checked():
    with pytest.raises(ConfigError):
        ServeSettings(max_upload_mb=0)
    with pytest.raises(ConfigError):
        ServeSettings(max_concurrent=0)


# --- a real server -----------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb(pid):
    """``(VmRSS, VmHWM)`` of a process in MB, from /proc (Linux)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


@contextlib.contextmanager
def running_server(model, *options, log=None):
    """``python -m emovox serve`` on 127.0.0.1 in a subprocess; yields ``(url, process)``."""
    port = free_port()
    cmd = [sys.executable, "-m", "emovox", "serve", "--model", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", *options]
    err = open(log, "w+") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                text = Path(log).read_text() if log else ""
                raise RuntimeError(f"server exited with {proc.returncode}: {text[-2000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start within 90 s")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            err.close()


def raw_upload(port, total, chunked, chunk=MB, deadline_s=60):
    """Send ``total`` bytes like a careful client: stop as soon as an answer arrives.

    Returns ``(status, json body, bytes sent)``.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = "POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {total}\r\n\r\n"
    sock.sendall(head.encode())
    block = bytes(chunk)
    piece = f"{chunk:x}\r\n".encode() + block + b"\r\n" if chunked else block
    sent = 0
    stop = time.monotonic() + deadline_s
    with contextlib.suppress(OSError):  # a reset after the answer is fine
        while sent < total and time.monotonic() < stop:
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(piece)
            sent += chunk
    answer = b""
    with contextlib.suppress(OSError):
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head else 0
    return status, json.loads(body) if body else None, sent


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with running_server(tiny_model, "--max-upload-mb", "8", "--max-concurrent", "64",
                        log=log) as (url, proc):
        yield url, proc


def test_32_concurrent_uploads_all_succeed(server, tmp_path):
    url, _ = server
    data = wav_bytes(voice(250, 2.0, seed=3), tmp_path)
    barrier = threading.Barrier(32)

    def one(i):
        with httpx.Client(timeout=120) as client:
            barrier.wait()
            return client.post(url + "/v1/predict", files={"file": (f"c{i}.wav", data)})

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(one, range(32)))
    assert [r.status_code for r in responses] == [200] * 32, [r.text for r in responses]
    docs = [r.json() for r in responses]
    assert {d["path"] for d in docs} == {f"c{i}.wav" for i in range(32)}
    assert len({json.dumps(d["probabilities"]) for d in docs}) == 1  # same clip, same answer
    assert httpx.get(url + "/health").json()["in_flight"] == 0


def test_text_file_through_the_real_server(server):
    url, _ = server
    response = httpx.post(url + "/v1/predict",
                          files={"file": ("README.txt", b"hello, this is text\n" * 100)})
    assert response.status_code == 415
    assert response.json()["error"] == "README.txt: not an audio file or unsupported format"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_600_mb_upload_is_refused_without_memory_growth(server):
    url, proc = server
    port = int(url.rsplit(":", 1)[1])
    assert httpx.post(url + "/v1/predict", content=EXAMPLE.read_bytes()).status_code == 200
    rss_before, peak_before = memory_mb(proc.pid)
    total = 600 * MB
    for chunked in (False, True):
        status, doc, sent = raw_upload(port, total, chunked)
        assert status == 413, doc
        assert doc["error"].startswith("upload too large: the limit is 8 MB")
        assert sent < total / 4  # the refusal came long before the end of the upload
    rss_after, peak_after = memory_mb(proc.pid)
    # The upload is 600 MB; the server holds at most a few chunks of it at a time.
    assert peak_after - peak_before < 60, (rss_before, peak_before, rss_after, peak_after)
    assert rss_after - rss_before < 60
    assert httpx.get(url + "/health").json()["in_flight"] == 0
    assert httpx.post(url + "/v1/predict", content=EXAMPLE.read_bytes()).status_code == 200


def test_cli_parser_and_missing_model(tmp_path):
    from emovox.cli import main

    assert main(["serve", "--model", str(tmp_path / "none.pt"), "--port", "1"]) == 2
    with pytest.raises(SystemExit):
        main(["serve", "--port", "x"])


def test_predict_with_text_gives_the_record_of_emovox_predict_with_text(tiny_model, uploads,
                                                                       capsys, monkeypatch):
    pytest.importorskip("faster_whisper")  # the text extra is in dev: CI has it
    rec = Recognizer.from_checkpoint(tiny_model)
    client = make_client(rec, uploads)
    assert client.post("/v1/predict?text_weight=0.5", content=EXAMPLE.read_bytes(),
                       headers={"content-type": "audio/wav"}).status_code == 400
    with open(EXAMPLE, "rb") as handle:
        served = client.post("/v1/predict?with_text=true&text_weight=0.5",
                             files={"file": ("example.wav", handle)})
    assert served.status_code == 200, served.text
    assert cli_main(["predict", str(EXAMPLE), "--model", str(tiny_model), "--format", "jsonl",
                     "--with-text", "--text-weight", "0.5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    body = served.json()
    assert body["transcript"] and body["transcript"] == printed["transcript"]
    assert body["fused_label"] == printed["fused_label"] and body["text_weight"] == 0.5
    for name, p in body["fused_probabilities"].items():
        assert p == pytest.approx(0.5 * body["probabilities"][name]
                                  + 0.5 * body["text_probabilities"][name], abs=1e-5)
    # without the extra the server says which one, before reading the upload
    import emovox.text as text_module

    def missing() -> None:
        raise text_module.MissingExtraError("faster-whisper", "text")

    monkeypatch.setattr(text_module, "check_text_extra", missing)
    refused = client.post("/v1/predict?with_text=true", files={"file": ("x.wav", b"RIFF")})
    assert refused.status_code == 501 and "text" in refused.json()["error"]
