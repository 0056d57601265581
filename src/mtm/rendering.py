"""The one place that decides full page or HTMX fragment, plus flash messages and refused forms."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette_wtf import csrf_token

from mtm.spotify.links import image_src, spotify_link

TEMPLATE_ROOT = Path(__file__).parent


def is_partial(request: Request) -> bool:
    """True for an HTMX request that swaps part of a page (not a history restore or full load)."""
    headers = request.headers
    return (headers.get("HX-Request") == "true"
            and headers.get("HX-History-Restore-Request") != "true"
            and headers.get("HX-Request-Type", "partial") != "full")


def flash(request: Request, message: str, category: str = "info") -> None:
    """Queue a one-shot message for the next page the user sees."""
    # A new list, not an in-place append: the session only saves values it sees assigned.
    request.session["flash"] = [*request.session.get("flash", []), [category, message]]


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    """Take the queued messages (each is shown once)."""
    return [tuple(item) for item in request.session.pop("flash", [])]


def _context(request: Request) -> dict[str, Any]:
    services = request.app.state.services
    # The 500 handler runs outside the session and CSRF middleware.
    has_session = "session" in request.scope and hasattr(request.state, "csrf_config")
    return {
        "user": getattr(request.state, "user", None),
        "demo": services.settings.demo,
        "csrf_token": csrf_token(request) if has_session else "",
        # Called by the templates that show messages, so a fragment never swallows them.
        "flashes": (lambda: pop_flashes(request)) if has_session else list,
    }


def _timeago(moment: datetime | int | None, now: datetime | None = None) -> str:
    if moment is None:
        return "never"
    if isinstance(moment, int):
        moment = datetime.fromtimestamp(moment, UTC)
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        seconds = -seconds
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds >= size:
                n = seconds // size
                return f"in {n} {unit}{'s' if n != 1 else ''}"
        return "in a moment"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def _clock(ts: int, timezone: str = "UTC") -> str:
    """A moment as the wall-clock time where the user is, with the date when not today."""
    zone = ZoneInfo(timezone)
    moment = datetime.fromtimestamp(ts, zone)
    if moment.date() == datetime.now(zone).date():
        return moment.strftime("%H:%M")
    return moment.strftime("%d %b %H:%M")


def _day_label(ts: int, timezone: str = "UTC") -> str:
    """A moment as a date on the user's calendar, e.g. 4 March 2019."""
    moment = datetime.fromtimestamp(ts, ZoneInfo(timezone))
    return f"{moment.day} {moment:%B %Y}"


def _compact(n: int) -> str:
    """A count short enough for a small table cell: 950, 1.2k, 12k."""
    if n < 1000:
        return str(n)
    if n < 10_000:
        return f"{n / 1000:.1f}k"
    return f"{round(n / 1000)}k"


@jinja2.pass_context
def _spotify_link(context: jinja2.runtime.Context, kind: str, ident: str) -> str:
    """"Open in Spotify": open.spotify.com, or the emulator's page in demo mode."""
    return spotify_link(kind, ident, demo=bool(context.get("demo")))


@jinja2.pass_context
def _artwork(context: jinja2.runtime.Context, url: str | None) -> str | None:
    """A stored image URL as an <img> src, or None when it cannot be shown."""
    return image_src(url, demo=bool(context.get("demo")))


class _MemoryBytecodeCache(jinja2.BytecodeCache):
    """Compiled templates kept for the process (keyed by each template's source checksum):
    an app made again in the same process, as the tests do, loads them instead of
    compiling them again."""

    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        """Fill the bucket from the store, when it holds this template."""
        data = self._store.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        """Keep a freshly compiled template."""
        self._store[bucket.key] = bucket.bytecode_to_string()


_BYTECODE = _MemoryBytecodeCache()


def make_templates() -> Jinja2Templates:
    """The Jinja environment: autoescaping, strict undefined, shared context and filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_ROOT),
        bytecode_cache=_BYTECODE,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["timeago"] = _timeago
    env.filters["thousands"] = lambda n: f"{n:,}"
    env.filters["clock"] = _clock
    env.filters["day_label"] = _day_label
    env.filters["compact"] = _compact
    env.globals["spotify_link"] = _spotify_link
    env.globals["artwork"] = _artwork
    return Jinja2Templates(env=env, context_processors=[_context])


def render(request: Request, page: str, fragment: str | None = None,
           context: Mapping[str, Any] | None = None, *, status_code: int = 200,
           headers: Mapping[str, str] | None = None) -> Response:
    """Render `pages/<page>.html`, or `partials/<fragment>.html` for an HTMX partial request."""
    templates: Jinja2Templates = request.app.state.services.templates
    partial = fragment is not None and is_partial(request)
    name = f"partials/{fragment}.html" if partial else f"pages/{page}.html"
    response = templates.TemplateResponse(request, name, dict(context or {}),
                                          status_code=status_code, headers=headers)
    if fragment is not None:
        # The same URL answers two shapes; caches must keep them apart.
        response.headers.append("Vary", "HX-Request")
    return response


# A post-sign-in target longer than this is not one of the app's own links.
NEXT_MAX_LENGTH = 2000
# Percent-decoded this many times at most, as browsers, proxies and htmx might between them.
NEXT_DECODE_DEPTH = 4
# Kept as they are when a local path is made safe for a header; the rest is percent-encoded.
_URL_SAFE = "/?#[]@!$&'()*+,;=:%~-._"


def _local_at_every_level(url: str) -> bool:
    """A path on this site however often it is percent-decoded: no scheme or host.

    The whole value must be clean as written; once decoded, only the path (before ? or #)
    decides where a browser goes, so a query may hold whatever it encodes.
    """
    if any(c.isspace() for c in url):
        return False
    for _ in range(NEXT_DECODE_DEPTH + 1):
        # Browsers drop tabs and newlines inside URLs ("/\t/evil" becomes "//evil") and read
        # a backslash as a slash; control characters end a header line or the connection.
        if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
            return False
        if not url.startswith("/") or url.startswith("//"):
            return False
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            return False
        path = re.split(r"[?#]", url, maxsplit=1)[0]
        decoded = unquote(path)
        if decoded == path:
            return True
        url = decoded
    # Still changing after that many decodings: nothing the app links to looks like this.
    return False


def safe_next(url: object) -> str | None:
    """A local path to send the browser to after sign-in (or any redirect), else None.

    The one check for every redirect the app makes, whether it goes out as Location or as
    HX-Redirect: a path on this site only, checked as written and percent-decoded, no
    control characters, whitespace or backslashes; what is left non-ASCII is percent-encoded,
    so the value is always a valid header.
    """
    if not isinstance(url, str) or not url or len(url) > NEXT_MAX_LENGTH:
        return None
    if not _local_at_every_level(url):
        return None
    return quote(url, safe=_URL_SAFE)


def redirect(request: Request, url: str, *, status_code: int = 303, hx_status: int = 200
             ) -> Response:
    """Send the browser elsewhere: a redirect for a plain request, HX-Redirect for HTMX.

    Only to a local path (`safe_next`); anything else goes to the home page instead.
    """
    url = safe_next(url) or "/"
    if request.headers.get("HX-Request") == "true":
        # htmx follows HX-Redirect whatever the status, so the status can stay honest.
        return Response(status_code=hx_status, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=status_code)


def redirect_after_post(request: Request, url: str, message: str | None = None,
                        category: str = "success") -> Response | None:
    """A POST that worked: a plain form gets the flash and a 303 (post/redirect/get).

    None for an HTMX request, which the caller answers with its fragment instead.
    """
    if is_partial(request):
        return None
    if message:
        flash(request, message, category)
    return redirect(request, url)


# A refused plain form's input waits in the session for the GET it is redirected to.
REFUSED_FORM = "refused_form"
REFUSED_FORM_SECONDS = 600


@dataclass(frozen=True)
class RefusedForm:
    """A plain form POST that was refused, as the GET showing the form again needs it."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    status: int = 422


def refuse_form(request: Request, url: str, form: str, *,
                values: Mapping[str, Any] | None = None, errors: Mapping[str, str] | None = None,
                problem: str | None = None, status_code: int = 422) -> Response | None:
    """A POST refused (invalid input, a conflict): post/redirect/get for a plain form.

    The input and the errors wait in the session for one GET of `url`, and the browser gets a
    303 there, so its history holds no POST that a reload or Back would offer to resubmit.
    None for an HTMX request, which the caller answers with its fragment and `status_code`.
    """
    if is_partial(request):
        return None
    request.session[REFUSED_FORM] = {
        "form": form, "values": dict(values or {}), "errors": dict(errors or {}),
        "problem": problem, "status": status_code, "at": int(time.time())}
    return redirect(request, url)


def take_refused_form(request: Request, form: str) -> RefusedForm | None:
    """The input and errors `form` was refused with just before this GET, once.

    The GET that shows them answers with the refusal's status (422, 409…); a reload after it
    finds nothing here and shows a clean form.
    """
    stored = request.session.get(REFUSED_FORM)
    if not isinstance(stored, dict) or stored.get("form") != form:
        return None
    request.session.pop(REFUSED_FORM, None)
    if time.time() - stored.get("at", 0) > REFUSED_FORM_SECONDS:
        return None
    return RefusedForm(stored.get("values") or {}, stored.get("errors") or {},
                       stored.get("problem"), int(stored.get("status") or 422))
