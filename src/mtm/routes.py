"""Every URL the app answers, in one named list."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mtm.config import Settings
from mtm.spotify.emulator import Emulator
from mtm.views import analytics, assets, auth, health, home, upcoming


def build_routes(settings: Settings, emulator: Emulator | None) -> list[BaseRoute]:
    """The route table; the emulator's browser pages are mounted only in demo mode."""
    routes: list[BaseRoute] = [
        Route("/", home.dashboard_page, name="home"),
        Route("/plays", home.plays, name="plays"),
        Route("/analytics", analytics.analytics_page, name="analytics"),
        Route("/playlists", upcoming.playlists, name="playlists"),
        Route("/settings", upcoming.settings, name="settings"),
        Route("/signin", auth.signin, name="signin"),
        Route("/login", auth.login, name="login"),
        Route("/callback", auth.callback, name="callback"),
        Route("/logout", auth.logout, methods=["POST"], name="logout"),
        Route("/healthz", health.healthz, name="healthz"),
        Route("/favicon.ico", assets.favicon, name="favicon"),
        Mount("/static", app=StaticFiles(directory=settings.static_dir), name="static"),
    ]
    if emulator is not None:
        routes.append(Mount("/emulator", routes=emulator.browser_routes(), name="emulator"))
    return routes
