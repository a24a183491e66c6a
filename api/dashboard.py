"""``nas dashboard``: optuna-dashboard on the service database, for admin tokens only.

The dashboard shows every study in the database, that is every user's searches, and lets its user rename
or delete them; optuna-dashboard has no notion of owners. So it opens only to tokens created with
``nas token create NAME --admin``. A browser presents the token once on ``/login``, which sets it as an
HttpOnly, SameSite=Strict cookie (Secure behind HTTPS); scripts send ``Authorization: Bearer <token>``.
A user token gets 403, no token 401 (a browser asking for a page is sent to ``/login`` instead).

It is an app of its own, not a route of the API: optuna-dashboard's page loads ``/static/...`` and calls
``/api/...`` from the root of its origin, so under a prefix of the API it would have to own those paths.
Its WSGI app runs behind the token check through a2wsgi.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nas.service import TokenRecord, authenticate

COOKIE = "nas_dashboard_token"
LOGIN, LOGOUT = "/login", "/logout"
MAX_FORM_BYTES = 4096
NOT_ADMIN = ("the dashboard shows every user's searches, so it needs an admin token "
             "(create one where the service runs: nas token create NAME --admin)")

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>NAS dashboard: sign in</title>
<style>body{{font-family:sans-serif;max-width:34em;margin:4em auto}}input{{width:100%;padding:.4em;margin:.4em 0}}
.error{{color:#a00}}</style></head>
<body><h1>NAS dashboard</h1>
<p>The dashboard shows every user's searches; it opens to admin tokens
(<code>nas token create NAME --admin</code>).</p>
{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="off" autofocus required>
<button id="sign-in" type="submit">Sign in</button>
</form></body></html>
"""


def login_page(error: str = "", next_path: str = "/dashboard", status_code: int = 200) -> HTMLResponse:
    shown = f'<p class="error" id="error">{html.escape(error)}</p>' if error else ""
    return HTMLResponse(_PAGE.format(error=shown, next=html.escape(_local(next_path), quote=True)),
                        status_code=status_code, headers={"Cache-Control": "no-store"})


def _local(path: str) -> str:
    """Only a path on this server is a place to go back to after signing in (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/dashboard"


class TokenGate:
    """Passes a request to ``app`` only with an admin token (cookie or bearer header)."""

    def __init__(self, app: ASGIApp, database_url: str) -> None:
        self.app, self.database_url = app, database_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = await self._token(request)
        if token is not None and token.admin:
            if "accept-encoding" not in request.headers:  # optuna-dashboard's static files fail without it
                scope = {**scope, "headers": [*scope["headers"], (b"accept-encoding", b"identity")]}
            await self.app(scope, receive, _revalidated(send))
            return
        await self._refuse(request, token)(scope, receive, send)

    async def _token(self, request: Request) -> TokenRecord | None:
        header = request.headers.get("authorization", "")
        presented = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
        if not presented:
            return None
        return await run_in_threadpool(authenticate, self.database_url, presented)

    @staticmethod
    def _refuse(request: Request, token: TokenRecord | None) -> Response:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if token is not None:
            if wants_page:
                return login_page(f"token {token.name!r} is not an admin token: {NOT_ADMIN}",
                                  request.url.path, status_code=403)
            return JSONResponse({"detail": NOT_ADMIN}, status_code=403)
        if wants_page:
            return RedirectResponse(f"{LOGIN}?next={quote(request.url.path)}", status_code=303)
        return JSONResponse({"detail": "missing or invalid API token (sign in at /login, or send "
                             "'Authorization: Bearer <admin token>')"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})


def _revalidated(send: Send) -> Send:
    """Answers may be cached only by the browser and must be revalidated (here, so through the token check)
    before each use: a signed-out or revoked browser must not keep showing studies from its cache."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
            message = {**message, "headers": [*headers, (b"cache-control", b"private, no-cache")]}
        await send(message)

    return sending


def create_dashboard(database_url: str) -> ASGIApp:
    """The sign-in pages and, behind the admin check, optuna-dashboard on ``database_url``."""
    from a2wsgi import WSGIMiddleware
    from optuna_dashboard import wsgi

    from nas.search._study import rdb_storage
    from nas.service import ensure_schema

    ensure_schema(database_url)  # the tokens' admin flag is a migration
    dashboard: ASGIApp = WSGIMiddleware(wsgi(rdb_storage(database_url)))  # type: ignore[arg-type,assignment]

    async def show_login(request: Request) -> Response:
        return login_page(next_path=request.query_params.get("next", "/dashboard"))

    async def sign_in(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return login_page("the form is too large", status_code=413)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        next_path = _local(form.get("next", "/dashboard"))
        token = await run_in_threadpool(authenticate, database_url, form.get("token", "").strip())
        if token is None:
            return login_page("unknown or revoked token", next_path, status_code=401)
        if not token.admin:
            return login_page(f"token {token.name!r} is not an admin token: {NOT_ADMIN}", next_path, status_code=403)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(COOKIE, form["token"].strip(), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    async def sign_out(request: Request) -> Response:
        response = RedirectResponse(LOGIN, status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    pages = Starlette(routes=[Route(LOGIN, show_login, methods=["GET"]), Route(LOGIN, sign_in, methods=["POST"]),
                              Route(LOGOUT, sign_out, methods=["GET", "POST"])])
    return _Dispatch(pages, TokenGate(dashboard, database_url))


class _Dispatch:
    """The sign-in pages by their paths; every other path (optuna-dashboard's) through the gate."""

    def __init__(self, pages: ASGIApp, gated: ASGIApp) -> None:
        self.pages, self.gated = pages, gated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in (LOGIN, LOGOUT):
            await self.pages(scope, receive, send)
        else:
            await self.gated(scope, receive, send)
