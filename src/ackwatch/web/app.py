"""The board's WSGI application: a few fixed routes, read-only, every byte from the
browser bounded before use.

    GET /                 the page (the board, rendered; the script keeps it live)
    GET /live             the board alone, for the script: 304 while the version it
                          shows (If-None-Match) is current
    GET /static/board.js  the one script; /static/board.css the one style sheet
    GET /report?format=html|csv|csv-summary|json&since=YYYY-MM-DD&until=YYYY-MM-DD
                          a download

Only GET and HEAD; any other path is 404, a query string anywhere but /report is 400.
Every response carries a strict Content-Security-Policy (scripts, styles, fetches only
from this origin, nothing inline, no frames, forms only to this origin) and is never
cached. Client data never appears in a URL: the only parameters are the report's format
and dates. waitress bounds what reaches here (header and body sizes, connection count,
idle time: `server`); templates escape every value (Jinja2 autoescape). While the state
database is unreachable every route that reads it answers 503 with Retry-After (`outage`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.resources
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import structlog

from ackwatch.config import Config
from ackwatch.store import Store, StoreUnavailable
from ackwatch.web import board as board_view
from ackwatch.web import downloads
from ackwatch.web.access import Access, Refusal, Viewer
from ackwatch.web.loginlimit import LoginLimit
from ackwatch.web.outage import RETRY_AFTER, DatabaseOutage
from ackwatch.web.state import State, StateCache

log = structlog.get_logger(__name__)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)
MAX_PATH = 64
MAX_QUERY = 128
MAX_HEADERS = 48  # distinct header names (their total size: `server.LIMITS`)
STATIC = {"/static/board.js": "text/javascript; charset=utf-8",
          "/static/board.css": "text/css; charset=utf-8"}

StartResponse = Callable[..., Any]


def _static_files() -> dict[str, bytes]:
    root = importlib.resources.files("ackwatch.web") / "static"
    return {path: (root / path.rpartition("/")[2]).read_bytes() for path in STATIC}


class BoardApp:
    """The WSGI callable. ``cache`` holds the state read; ``open_reader`` opens a
    read-only store for a download; ``config`` is the daemon's current config."""

    def __init__(self, cache: StateCache, open_reader: Callable[[], Store],
                 config: Callable[[], Config], now: Callable[[], dt.datetime]) -> None:
        from jinja2 import Environment, PackageLoader, StrictUndefined

        self.cache = cache
        self._open_reader = open_reader
        self._config = config
        self._now = now
        self._login_limit = LoginLimit()  # kept across reloads: `Access`
        self.access = Access(config().web, self._login_limit)
        self._templates = Environment(
            loader=PackageLoader("ackwatch.web", "templates"),
            autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        )
        self._downloading = threading.Lock()  # one download at a time: `downloads`
        self.outage = DatabaseOutage(now)
        self._static = _static_files()
        self._static_etags = {
            p: '"' + hashlib.sha256(b).hexdigest()[:16] + '"' for p, b in self._static.items()
        }

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        if method not in ("GET", "HEAD"):
            return self._send(start_response, method, "405 Method Not Allowed",
                              b"Only GET here.\n", extra=[("Allow", "GET, HEAD")])
        if len(path) > MAX_PATH or len(query) > MAX_QUERY:
            return self._text(start_response, method, "414 URI Too Long", "Too long.")
        if sum(1 for key in environ if key.startswith("HTTP_")) > MAX_HEADERS:
            return self._text(start_response, method, "431 Request Header Fields Too Large",
                              "Too many headers.")
        web = self._config().web
        if web != self.access.web:  # a reload (SIGHUP) changed who may see what
            self.access = Access(web, self._login_limit)
        who = self.access.check(environ)
        if isinstance(who, Refusal):
            extra = ([("WWW-Authenticate", 'Basic realm="ackwatch board", charset="UTF-8"')]
                     if who.challenge else [])
            if who.retry_after is not None:
                extra.append(("Retry-After", str(who.retry_after)))
            return self._text(start_response, method, who.status, who.reason, extra=extra)
        if path == "/favicon.ico":  # browsers ask; there is none
            return self._send(start_response, method, "204 No Content", b"")
        if path in STATIC and not query:
            return self._static_file(environ, start_response, method, path)
        if path != "/report" and query:
            return self._text(start_response, method, "400 Bad Request", "No parameters here.")
        if path not in ("/", "/live", "/report"):
            return self._text(start_response, method, "404 Not Found", "Not here.")
        if self.outage.wait():
            return self._unreachable(start_response, method)
        try:
            if path == "/report":
                return self._report(start_response, method, query, who)
            if path == "/":
                return self._page(start_response, method, who)
            return self._live(environ, start_response, method, who)
        except StoreUnavailable as exc:  # logged once per outage; the page says it is stale
            self.outage.failed(exc)
            return self._unreachable(start_response, method)
        except Exception as exc:  # the state cannot be read now: the page says it is stale
            log.error("web_state_unreadable", error=type(exc).__name__)
            return self._text(start_response, method, "503 Service Unavailable",
                              "The state cannot be read right now; retrying.")

    # ------------------------------------------------------------------ routes

    def _state(self) -> State:
        """The state (`StateCache.get`: read again when stale, so an outage's end)."""
        state = self.cache.get()
        self.outage.succeeded()
        return state

    def _board(self, viewer: Viewer) -> tuple[board_view.Board, str]:
        state = self._state()
        version = self.cache.version
        return board_view.build(state, self._config(), self._now(), viewer), version

    def _page(self, start_response: StartResponse, method: str, viewer: Viewer) -> Iterable[bytes]:
        board, version = self._board(viewer)
        now = self._now()
        today = board_view.local_date(now, self._config().timezone)
        body = self._templates.get_template("page.html").render(
            board=board, version=version,
            since=today - dt.timedelta(days=today.weekday() + 7),
            until=today - dt.timedelta(days=today.weekday()),
        )
        return self._send(start_response, method, "200 OK", body.encode("utf-8"),
                          content_type="text/html; charset=utf-8")

    def _live(self, environ: dict[str, Any], start_response: StartResponse, method: str,
              viewer: Viewer) -> Iterable[bytes]:
        self._state()  # reads again when stale, so that the version is current
        version = self.cache.version
        etag = f'"{version}"'
        if environ.get("HTTP_IF_NONE_MATCH", "").strip() == etag:
            return self._send(start_response, method, "304 Not Modified", b"",
                              extra=[("ETag", etag)])
        board, version = self._board(viewer)
        body = self._templates.get_template("live.html").render(board=board)
        return self._send(start_response, method, "200 OK", body.encode("utf-8"),
                          content_type="text/html; charset=utf-8",
                          extra=[("ETag", f'"{version}"'), ("X-Board-Now", board.now_iso)])

    def _static_file(self, environ: dict[str, Any], start_response: StartResponse, method: str,
                     path: str) -> Iterable[bytes]:
        etag = self._static_etags[path]
        if environ.get("HTTP_IF_NONE_MATCH", "").strip() == etag:
            return self._send(start_response, method, "304 Not Modified", b"",
                              extra=[("ETag", etag)])
        return self._send(start_response, method, "200 OK", self._static[path],
                          content_type=STATIC[path], extra=[("ETag", etag)])

    def _report(self, start_response: StartResponse, method: str, query: str,
                viewer: Viewer) -> Iterable[bytes]:
        try:
            parsed = parse_qs(query, keep_blank_values=True, strict_parsing=True,
                              max_num_fields=3, errors="strict")
            request = downloads.parse(parsed)
        except (downloads.BadRequest, ValueError) as exc:
            reason = str(exc) if isinstance(exc, downloads.BadRequest) else "bad query"
            return self._text(start_response, method, "400 Bad Request", f"Refused: {reason}.")
        if not self._downloading.acquire(blocking=False):
            return self._text(start_response, method, "503 Service Unavailable",
                              "Another report is being prepared; retry in a moment.")
        try:
            store = self._open_reader()
            try:
                body = downloads.render(request, store, self._config(), viewer, self._now())
            finally:
                store.close()
        finally:
            self._downloading.release()
        self.outage.succeeded()
        log.info("web_report_downloaded", user=viewer.name, format=request.format)
        return self._send(
            start_response, method, "200 OK", body,
            content_type=downloads.FORMATS[request.format],
            extra=[("Content-Disposition", f'attachment; filename="{request.filename}"')],
        )

    # ------------------------------------------------------------------ responses

    def _unreachable(self, start_response: StartResponse, method: str) -> Iterable[bytes]:
        return self._text(start_response, method, "503 Service Unavailable",
                          "State database unreachable; retrying.",
                          extra=[("Retry-After", str(int(RETRY_AFTER.total_seconds())))])

    def _text(self, start_response: StartResponse, method: str, status: str, text: str,
              extra: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
        return self._send(start_response, method, status, (text + "\n").encode("utf-8"),
                          extra=extra)

    def _send(self, start_response: StartResponse, method: str, status: str, body: bytes, *,
              content_type: str = "text/plain; charset=utf-8",
              extra: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
        headers = [*SECURITY_HEADERS, *(extra or [])]
        if not status.startswith(("304", "204")):
            headers += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [b""] if method == "HEAD" or status.startswith(("304", "204")) else [body]
