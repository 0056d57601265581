"""Production mode: settings, secure cookies, allowed hosts, proxies, HSTS, request ids, logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mtm import deployment
from mtm.config import Settings, load_settings
from tests.conftest import BASE_URL

HOSTS = ("127.0.0.1", "music.example.org", "*.example.net")


def production(tmp_path: Path, **env: str) -> Settings:
    return load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(tmp_path / "data"), "MTM_SECRET_KEY": "test-secret-key",
        "MTM_DEMO_PLAYS": "0", "MTM_SYNC_INTERVAL": "0", "MTM_ENV": "production", **env})


# --- settings ----------------------------------------------------------------------------


def test_production_refuses_to_start_without_knowing_its_hosts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MTM_ALLOWED_HOSTS"):
        production(tmp_path)


def test_production_hosts_default_to_the_redirect_uris(tmp_path: Path) -> None:
    settings = production(tmp_path,
                          SPOTIFY_REDIRECT_URI="https://Music.Example.org/callback")
    assert settings.production and settings.allowed_hosts == ("music.example.org",)


def test_deployment_settings_are_read_and_checked(tmp_path: Path) -> None:
    settings = production(tmp_path, MTM_ALLOWED_HOSTS="Music.example.org, 127.0.0.1",
                          MTM_TRUSTED_PROXIES="10.0.0.0/8,::1", MTM_WORKERS="3")
    assert settings.allowed_hosts == ("music.example.org", "127.0.0.1")
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1")
    assert settings.workers == 3
    for name, value, words in (("MTM_ENV", "prod", "production or development"),
                               ("MTM_TRUSTED_PROXIES", "my-proxy", "IP addresses"),
                               ("MTM_WORKERS", "0", "between 1 and 32"),
                               ("MTM_WORKERS", "many", "whole number")):
        with pytest.raises(ValueError, match=words):
            production(tmp_path, MTM_ALLOWED_HOSTS="h", **{name: value})


def test_outside_production_nothing_changes(settings: Settings) -> None:
    assert not settings.production
    assert settings.allowed_hosts == settings.trusted_proxies == ()
    assert settings.workers == 1


def test_serve_says_a_sentence_when_production_lacks_hosts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from mtm import cli

    for name in ("MTM_ENV", "MTM_LOG_LEVEL", "MTM_ALLOWED_HOSTS", "SPOTIFY_REDIRECT_URI"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MTM_ENV_FILE", str(tmp_path / "none.env"))
    assert cli.main(["serve", "--production"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: production mode needs") and "Traceback" not in err


# --- the app in production ---------------------------------------------------------------


async def started(settings: Settings, emulator):
    from mtm.app import create_app

    application = create_app(settings, emulator=emulator)
    return application, application.router.lifespan_context(application)


@pytest.fixture
async def prod_app(tmp_path: Path, emulator) -> AsyncIterator:
    application, lifespan = await started(
        production(tmp_path, MTM_ALLOWED_HOSTS=",".join(HOSTS)), emulator)
    async with lifespan:
        yield application


def client_for(app, base_url: str = BASE_URL) -> httpx.AsyncClient:
    # Exceptions are answered by the app's 500 page, as a server does, not raised here.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url=base_url)


async def test_the_session_cookie_is_secure_in_production(prod_app, client) -> None:
    async with client_for(prod_app, "https://music.example.org") as http:
        cookie = (await http.get("/login")).headers["set-cookie"]
    assert "mtm_session=" in cookie and "secure" in cookie.lower()
    assert "secure" not in (await client.get("/login")).headers["set-cookie"].lower()


async def test_hosts_not_allowed_are_refused(prod_app) -> None:
    async with client_for(prod_app) as http:
        for host in ("music.example.org", "MUSIC.example.org:443", "a.example.net",
                     "127.0.0.1:8000"):
            assert (await http.get("/signin", headers={"Host": host})).status_code == 200, host
        for host in ("evil.example", "music.example.org.evil.example", "example.net"):
            refused = await http.get("/signin", headers={"Host": host})
            assert refused.status_code == 400, host
            assert "host name" in refused.text
            assert refused.headers["x-content-type-options"] == "nosniff"
        # A container's own health check asks for whatever host it likes.
        assert (await http.get("/healthz", headers={"Host": "localhost"})).status_code == 200


async def test_any_host_is_answered_outside_production(client) -> None:
    assert (await client.get("/signin", headers={"Host": "evil.example"})).status_code == 200


async def test_the_redirect_uri_never_comes_from_a_raw_host_header(prod_app) -> None:
    async with client_for(prod_app) as http:
        asked = await http.get("/login", headers={"Host": "music.example.org"})
        wildcard = await http.get("/login", headers={"Host": "evil.example.net"})
    uri = parse_qs(urlsplit(asked.headers["location"]).query)["redirect_uri"][0]
    assert uri == "http://music.example.org/callback"
    # A wildcard lets the request in, but the URI names the first exact host.
    uri = parse_qs(urlsplit(wildcard.headers["location"]).query)["redirect_uri"][0]
    assert uri == "http://127.0.0.1/callback"


async def test_the_configured_redirect_uri_wins(tmp_path: Path, emulator) -> None:
    application, lifespan = await started(production(
        tmp_path, SPOTIFY_REDIRECT_URI="https://music.example.org/callback"), emulator)
    async with lifespan, client_for(application, "https://music.example.org") as http:
        location = (await http.get("/login")).headers["location"]
    assert parse_qs(urlsplit(location).query)["redirect_uri"] == [
        "https://music.example.org/callback"]


async def test_hsts_only_over_https(prod_app) -> None:
    async with client_for(prod_app, "https://music.example.org") as http:
        secure = await http.get("/signin")
    async with client_for(prod_app, "http://music.example.org") as http:
        plain = await http.get("/signin")
        # No proxy is trusted: a client's own X-Forwarded-Proto changes nothing.
        forged = await http.get("/signin", headers={"X-Forwarded-Proto": "https"})
    assert secure.headers["strict-transport-security"].startswith("max-age=31536000")
    assert "strict-transport-security" not in plain.headers
    assert "strict-transport-security" not in forged.headers


async def test_proxy_headers_are_believed_from_trusted_proxies_only(
        tmp_path: Path, emulator, caplog: pytest.LogCaptureFixture) -> None:
    # httpx's ASGI transport connects from 127.0.0.1.
    application, lifespan = await started(production(
        tmp_path, MTM_ALLOWED_HOSTS="music.example.org", MTM_TRUSTED_PROXIES="127.0.0.0/8"),
        emulator)
    caplog.set_level(logging.INFO, logger="mtm.access")
    async with lifespan, client_for(application, "http://music.example.org") as http:
        response = await http.get("/login", headers={"X-Forwarded-Proto": "https",
                                                     "X-Forwarded-For": "203.0.113.7"})
    assert response.headers["strict-transport-security"]
    uri = parse_qs(urlsplit(response.headers["location"]).query)["redirect_uri"][0]
    assert uri == "https://music.example.org/callback"
    assert "secure" in response.headers["set-cookie"].lower()
    [record] = [r for r in caplog.records if r.name == "mtm.access"]
    assert record.http["client"] == "203.0.113.7" and record.http["scheme"] == "https"


async def test_a_request_id_is_echoed_or_made(client) -> None:
    given = await client.get("/signin", headers={"X-Request-ID": "edge-42.abc:1"})
    assert given.headers["x-request-id"] == "edge-42.abc:1"
    for bad in ("a b", "x" * 200, "<script>", "id\u00e9".encode()):
        made = await client.get("/signin", headers={"X-Request-ID": bad})
        assert len(made.headers["x-request-id"]) == 32 and made.headers["x-request-id"] != bad
    one, two = await client.get("/healthz"), await client.get("/healthz")
    assert one.headers["x-request-id"] != two.headers["x-request-id"]


async def test_the_access_log_never_holds_secrets(prod_app, caplog: pytest.LogCaptureFixture
                                                  ) -> None:
    caplog.set_level(logging.INFO, logger="mtm.access")
    async with client_for(prod_app) as http:
        http.cookies.set("mtm_session", "COOKIE-VALUE")
        response = await http.get(
            "/callback?code=THE-CODE&state=THE-STATE&next=/plays&access_token=TOKEN&x=1",
            headers={"Authorization": "Bearer AUTH-VALUE", "X-Request-ID": "req-1"})
    [record] = [r for r in caplog.records if r.name == "mtm.access"]
    line = deployment.JsonFormatter().format(record)
    for secret in ("THE-CODE", "THE-STATE", "TOKEN", "COOKIE-VALUE", "AUTH-VALUE", "Bearer"):
        assert secret not in line, secret
    entry = json.loads(line)
    assert entry["http"]["status"] == response.status_code
    assert entry["http"]["path"] == "/callback"
    assert parse_qs(entry["http"]["query"]) == {
        "code": ["[redacted]"], "state": ["[redacted]"], "next": ["/plays"],
        "access_token": ["[redacted]"], "x": ["1"]}
    assert entry["request_id"] == "req-1"


async def test_no_access_log_outside_production(client, caplog: pytest.LogCaptureFixture
                                                ) -> None:
    caplog.set_level(logging.INFO, logger="mtm.access")
    await client.get("/signin")
    assert not [r for r in caplog.records if r.name == "mtm.access"]


async def test_a_crash_shows_the_apps_page_and_logs_the_trace(
        prod_app, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from mtm import health

    async def crash(*args, **kwargs):
        raise RuntimeError("kaboom-internal-detail")

    monkeypatch.setattr(health, "report", crash)
    async with client_for(prod_app) as http:
        response = await http.get("/healthz", headers={"X-Request-ID": "crash-1"})
    assert response.status_code == 500
    assert "Traceback" not in response.text and "kaboom" not in response.text
    assert "Something went wrong on our side" in response.text
    assert response.headers["x-request-id"] == "crash-1"
    traced = [r for r in caplog.records if r.exc_info and r.name == "mtm.errors"]
    line = deployment.JsonFormatter().format(traced[0])
    entry = json.loads(line)
    assert "\n" not in line and entry["request_id"] == "crash-1"
    assert "kaboom-internal-detail" in entry["exception"] and "Traceback" in entry["exception"]


def test_production_logs_are_json_lines_on_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("uvicorn.access").disabled)
    try:
        deployment.configure_logging()
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
        logging.getLogger("mtm.sync").warning("two\nlines")
    finally:
        for handler in list(root.handlers):
            if handler not in saved[0]:
                root.removeHandler(handler)
        root.setLevel(saved[1])
        logging.getLogger("uvicorn.access").disabled = saved[2]
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == [
        "Started server process [7]", "two\nlines"]
    assert json.loads(lines[1])["level"] == "warning"


def test_redaction_of_query_strings() -> None:
    assert deployment.redact_query("") == ""
    assert deployment.redact_query("refresh_token=a&client_secret=b&Code=c&q=d") == \
        "refresh_token=%5Bredacted%5D&client_secret=%5Bredacted%5D&Code=%5Bredacted%5D&q=d" \
        .replace("%5B", "[").replace("%5D", "]")


# --- templates ---------------------------------------------------------------------------


async def test_no_template_compiles_on_a_first_request(app, client) -> None:
    from tests.conftest import sign_in

    env = app.state.services.templates.env
    # The loader is asked only for a template missing from the environment's cache, which
    # it then compiles (or loads from the process's bytecode).
    compiled: list[str] = []
    load = env.loader.load

    def counting(environment, name, globals=None):
        compiled.append(name)
        return load(environment, name, globals)

    env.loader.load = counting
    await sign_in(client)
    for path in ("/", "/plays", "/analytics", "/review", "/calendar", "/search?q=a",
                 "/playlists", "/settings", "/hidden", "/nope", "/signin"):
        assert (await client.get(path)).status_code in (200, 303, 404), path
        assert (await client.get(path, headers={"HX-Request": "true"})).status_code < 500
    assert compiled == []


def test_every_template_is_compiled_at_start(settings: Settings) -> None:
    from mtm.app import precompile_templates
    from mtm.rendering import make_templates

    templates = make_templates()
    count = precompile_templates(templates)
    assert count >= 60
    assert len(templates.env.cache) == count
    assert not [k for k in templates.env.cache if not k[1].endswith(".html")]
