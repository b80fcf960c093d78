"""An HTTP search service over an index folder: text, image and video queries answered with the top k ids.

    uniperceiver-hf serve --index INDEX_DIR --model M [--host 127.0.0.1] [--port 8000]
    python -m uniperceiver_hf.tools.serve ...   (the same)

The model and the index (memory-mapped) are loaded once. Each query goes through `pipeline("zero-shot-perception",
...)` with `candidate_set=INDEX_DIR`, so the service answers exactly what the pipeline answers.

    POST /search  {"text": "a red car"} | {"image": BASE64} | {"video": BASE64, "video_format": "mp4"}, "top_k": 10
        -> 200 {"results": [{"id": ..., "score": cosine similarity}, ...]}
    GET  /info    -> 200 {"count", "dim", "kind", "fingerprint", "modality", "model"}

A malformed request gets a 4xx status with `{"error": message}`. `search_service(url, text=... | image=... |
video=...)` is the Python client. Requests are served by a thread each and run the model one at a time.
"""

import argparse
import base64
import io
import json
import os
import tempfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..pipeline_uniperceiver import VIDEO_EXTENSIONS
from ..targets_uniperceiver import TargetSet


DESCRIPTION = __doc__.split("\n\n")[0]
MAX_BODY_BYTES = 64 * 1024 * 1024  # a base64 video clip fits; anything larger is refused with 413
MAX_TOP_K = 1000
QUERY_KINDS = ("text", "image", "video")


class RequestError(ValueError):
    """A request the service refuses: `status` (4xx) and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class SearchService:
    """The pipeline and the index, loaded once; `answer(request)` turns one request body into its results."""

    def __init__(self, index: str | os.PathLike, model: str, device: str | None = None, default_top_k: int = 10):
        from transformers import pipeline

        import uniperceiver_hf  # noqa: F401  (registers the pipeline)

        self.pipe = pipeline("zero-shot-perception", model=model, device=device)
        self.gallery = TargetSet.load(index, self.pipe.model)
        if self.gallery.index is None:
            raise ValueError(f"`index` {str(index)!r} is not an index folder (`uniperceiver-hf index`).")
        self.model, self.default_top_k = model, default_top_k
        self.lock = threading.Lock()  # one model call at a time: the pipeline's caches are not thread-safe

    def info(self) -> dict:
        info = self.gallery.index.info
        keys = ("count", "dim", "kind", "fingerprint", "modality")
        return {**{key: info.get(key) for key in keys}, "model": self.model}

    def answer(self, body: dict) -> list[dict]:
        """`[{"id", "score"}, ...]` for one request body (see the module docstring); `RequestError` if malformed."""
        if not isinstance(body, dict):
            raise RequestError(400, 'The request body must be a JSON object such as {"text": "a red car"}.')
        unknown = sorted(set(body) - {*QUERY_KINDS, "top_k", "video_format"})
        if unknown:
            raise RequestError(400, f"Unknown fields {unknown}; expected one of {list(QUERY_KINDS)} and 'top_k'.")
        kinds = [kind for kind in QUERY_KINDS if kind in body]
        if len(kinds) != 1:
            raise RequestError(400, f"Give exactly one query field of {list(QUERY_KINDS)}, got {kinds}.")
        top_k = body.get("top_k", self.default_top_k)
        if type(top_k) is not int or not 1 <= top_k <= MAX_TOP_K:
            raise RequestError(400, f"`top_k` must be an integer in [1, {MAX_TOP_K}], got {top_k!r}.")
        (kind,) = kinds
        value = body[kind]
        if not isinstance(value, str) or not value.strip():
            raise RequestError(400, f"`{kind}` must be a non-empty string (base64 for images and videos).")
        if kind == "text":
            return self._search({"text": value}, top_k)
        try:
            data = base64.b64decode(value, validate=True)
        except ValueError as error:
            raise RequestError(400, f"`{kind}` is not valid base64: {error}") from error
        if kind == "image":
            from PIL import Image, UnidentifiedImageError

            try:
                image = Image.open(io.BytesIO(data))
                image.load()
            except (UnidentifiedImageError, OSError) as error:
                raise RequestError(400, f"`image` is not a readable image: {error}") from error
            return self._search(image, top_k)
        extension = "." + str(body.get("video_format", "mp4")).lower().lstrip(".")
        if extension not in VIDEO_EXTENSIONS:
            raise RequestError(400, f"`video_format` must be one of {[e[1:] for e in VIDEO_EXTENSIONS]}.")
        with tempfile.TemporaryDirectory() as folder:  # the video decoder reads files
            path = Path(folder) / f"query{extension}"
            path.write_bytes(data)
            return self._search(str(path), top_k)

    def _search(self, query, top_k: int) -> list[dict]:
        with self.lock:
            try:
                results = self.pipe(query, candidate_set=self.gallery, top_k=min(top_k, len(self.gallery)))
            except ValueError as error:  # an undecodable video, an image too large, ...
                raise RequestError(400, str(error)) from error
        return [{"id": result["label"], "score": result["score"]} for result in results]


def _handler(service: SearchService):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.rstrip("/") == "/info":
                self._reply(200, service.info())
            else:
                self._reply(404, {"error": f"No such endpoint {self.path!r}: use POST /search or GET /info."})

        def do_POST(self):
            try:
                if self.path.rstrip("/") != "/search":
                    raise RequestError(404, f"No such endpoint {self.path!r}: use POST /search or GET /info.")
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self.close_connection = True  # the body is left unread
                    raise RequestError(413, f"The body has {length} bytes; the limit is {MAX_BODY_BYTES}.")
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except ValueError as error:
                    raise RequestError(400, f"The body is not valid JSON: {error}") from error
                self._reply(200, {"results": service.answer(body)})
            except RequestError as error:
                self._reply(error.status, {"error": str(error)})

        def log_message(self, format, *args):  # quiet: one line per request would drown the console
            pass

    return Handler


def make_server(service: SearchService, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """The HTTP server of `service` (port 0: any free port, read it from `server.server_address`)."""
    return ThreadingHTTPServer((host, port), _handler(service))


def search_service(
    url: str, text: str | None = None, image=None, video=None, top_k: int = 10, timeout: float = 120
) -> list[dict]:
    """Queries a running service: `[{"id", "score"}, ...]`. `image` and `video` are file paths or bytes (or a PIL
    image); a refused request raises `ValueError` with the service's message."""
    given = {kind: value for kind, value in (("text", text), ("image", image), ("video", video)) if value is not None}
    if len(given) != 1:
        raise ValueError(f"Give exactly one of `text`, `image` or `video`, got {sorted(given)}.")
    ((kind, value),) = given.items()
    body = {"top_k": top_k}
    if kind == "text":
        body["text"] = value
    else:
        if hasattr(value, "save"):  # a PIL image
            buffer = io.BytesIO()
            value.save(buffer, format="PNG")
            value = buffer.getvalue()
        elif isinstance(value, (str, os.PathLike)):
            if kind == "video":
                body["video_format"] = Path(value).suffix.lstrip(".") or "mp4"
            value = Path(value).read_bytes()
        body[kind] = base64.b64encode(value).decode()
    request = urllib.request.Request(
        url.rstrip("/") + "/search", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())["results"]
    except urllib.error.HTTPError as error:
        message = json.loads(error.read() or b"{}").get("error", error.reason)
        raise ValueError(f"The search service refused the request ({error.code}): {message}") from None


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--index", required=True, help="an index folder written by `uniperceiver-hf index`")
    parser.add_argument("--model", required=True, help="the model that encoded the gallery (folder or Hub id)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--top-k", type=int, default=10, help="results per query when a request sets none")
    parser.add_argument("--device", help="torch device (default: the pipeline's)")
    parser.set_defaults(run=run)
    return parser


def add_parser(subparsers) -> None:
    """Registers `uniperceiver-hf serve`."""
    add_arguments(subparsers.add_parser("serve", help=DESCRIPTION, description=DESCRIPTION))


def run(args: argparse.Namespace) -> None:
    service = SearchService(args.index, args.model, args.device, args.top_k)
    server = make_server(service, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"Serving {len(service.gallery)} rows of {args.index} on http://{host}:{port} (POST /search, GET /info)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    """`uniperceiver-hf serve` on its own."""
    parser = add_arguments(argparse.ArgumentParser(prog="uniperceiver-hf serve", description=DESCRIPTION))
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()


__all__ = ["SearchService", "make_server", "search_service"]
