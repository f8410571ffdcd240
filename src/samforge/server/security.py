"""Every request passes :class:`Guard` first: host, token and origin checks, the session
cookie, and the security headers of every response.

- Without a token the server listens on loopback only, and a request must name a loopback
  host (``Host: 127.0.0.1:8000``, ``localhost``): a web page on another site that rebinds
  its DNS name to 127.0.0.1 is refused.
- With a token, every request must carry it (``Authorization: Bearer TOKEN``, or the cookie
  set when the page is opened as ``/?token=TOKEN``), compared in constant time.
- Requests that change state (POST, PUT, PATCH, DELETE) from a browser must come from the
  server's own origin (or one of ``allowed_origins``): another site cannot make a visitor's
  browser draw, delete or save.
"""

from __future__ import annotations

import hmac
import re
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import ServerSettings, is_loopback

SESSION_COOKIE = "samforge_session"
TOKEN_COOKIE = "samforge_token"
UPLOAD_PATH = "/api/uploads"
MAX_BODY = 1 << 20  # JSON requests: prompts, strokes and names fit many times over
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
COOKIE_FLAGS = "Path=/; HttpOnly; SameSite=Strict"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
]


def new_session_id() -> str:
    return secrets.token_hex(16)


def is_session_id(value: str | None) -> bool:
    return value is not None and bool(_SESSION_ID.match(value))


class Guard:
    """ASGI middleware: refuse what the settings do not allow, name the session, add headers."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings
        self.token = settings.token.encode() if settings.token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = _cookies(headers)
        refusal = self._refusal(scope, headers, cookies)
        if refusal is not None:
            await _with_headers(refusal)(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = query.get("token", [""])[0]
        if self.token and scope["path"] == "/" and hmac.compare_digest(given.encode(), self.token):
            # The page opened from the printed URL: keep the token in a cookie and drop it
            # from the address bar (and from the browser's history). The token's characters
            # (settings.py) need no quoting in a cookie.
            response = RedirectResponse("/", status_code=303)
            response.headers.append("set-cookie", f"{TOKEN_COOKIE}={given}; {COOKIE_FLAGS}")
            await _with_headers(response)(scope, receive, send)
            return
        session = cookies.get(SESSION_COOKIE)
        extra: list[tuple[bytes, bytes]] = list(SECURITY_HEADERS)
        if not is_session_id(session):
            session = new_session_id()
            cookie = f"{SESSION_COOKIE}={session}; {COOKIE_FLAGS}; Max-Age=31536000"
            extra.append((b"set-cookie", cookie.encode()))
        scope.setdefault("state", {})["session_id"] = session

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, headers: Headers, cookies: dict[str, str]) -> Response | None:
        host = headers.get("host", "")
        if self.token is None and not is_loopback(_hostname(host)):
            return _error(
                403,
                f"this annotator answers only to localhost, not to host {host!r}; open "
                "http://127.0.0.1:PORT/ (to serve other machines, start it with --host and "
                "--token).",
            )
        if self.token is not None and not self._has_token(scope, headers, cookies):
            return _error(
                401,
                "this annotator needs its token: open the URL that `samforge serve` printed "
                "(…/?token=…), or send the header 'Authorization: Bearer TOKEN'.",
            )
        length = headers.get("content-length", "0")
        if scope["path"] != UPLOAD_PATH and (not length.isdigit() or int(length) > MAX_BODY):
            return _error(
                413, f"a request body may hold at most {MAX_BODY // 1024} KiB of JSON here."
            )
        if scope["method"] in UNSAFE_METHODS:
            origin = headers.get("origin")
            allowed = {f"{scope.get('scheme', 'http')}://{host}", *self.settings.allowed_origins}
            if origin is not None and origin not in allowed:
                return _error(
                    403,
                    f"requests that change annotations must come from this annotator's own "
                    f"page, not from {origin!r} (behind a proxy: start samforge serve with "
                    "--allow-origin ORIGIN).",
                )
            if origin is None and headers.get("sec-fetch-site") == "cross-site":
                return _error(403, "cross-site requests may not change annotations.")
        return None

    def _has_token(self, scope: Scope, headers: Headers, cookies: dict[str, str]) -> bool:
        assert self.token is not None
        given = []
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            given.append(authorization[7:].strip())
        if TOKEN_COOKIE in cookies:
            given.append(cookies[TOKEN_COOKIE])
        if scope["path"] == "/" and scope["method"] == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given += query.get("token", [])[:1]
        # Every candidate is compared, so the time does not tell which one was tried.
        matches = [hmac.compare_digest(value.encode(), self.token) for value in given]
        return any(matches)


def _hostname(host: str) -> str:
    """``127.0.0.1:8000`` -> ``127.0.0.1``; ``[::1]:8000`` -> ``::1``."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cookies(headers: Headers) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header: as if there were none
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _with_headers(response: Response) -> Response:
    for key, value in SECURITY_HEADERS:
        response.headers.append(key.decode(), value.decode())
    return response
