"""Every URL the app answers, in one named list."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import BaseRoute, Mount, Route

from mtm.config import Settings
from mtm.spotify.emulator import Emulator
from mtm.static_files import static_app
from mtm.views import (
    admin,
    analytics,
    assets,
    auth,
    calendar_page,
    entities,
    health,
    hiding,
    home,
    household,
    imports,
    jobs,
    playlists,
    review,
    search,
)
from mtm.views import settings as settings_page


class RowId(Convertor):
    """A database row id: digits that fit SQLite's integers (anything longer is a 404)."""

    # Only the form the app writes: ids start at 1, so "0", "01" or "-1" name nothing.
    regex = "[1-9][0-9]{0,17}"

    def convert(self, value: str) -> int:
        """The id as an int."""
        return int(value)

    def to_string(self, value: int) -> str:
        """The id in a URL."""
        return str(int(value))


def build_routes(settings: Settings, emulator: Emulator | None) -> list[BaseRoute]:
    """The route table; the emulator's browser pages are mounted only in demo mode."""
    register_url_convertor("id", RowId())
    routes: list[BaseRoute] = [
        Route("/", home.dashboard_page, name="home"),
        Route("/plays", home.plays, name="plays"),
        Route("/search", search.search_page, name="search"),
        Route("/calendar", calendar_page.calendar_page, name="calendar"),
        Route("/analytics", analytics.analytics_page, name="analytics"),
        Route("/review", review.review_page, name="review"),
        Route("/review/image.svg", review.review_image, name="review_image"),
        Route("/artists/{artist_id:id}", entities.artist_page, name="artist"),
        Route("/artists/{artist_id:id}/plays", entities.artist_plays, name="artist_plays"),
        Route("/albums/{album_id:id}", entities.album_page, name="album"),
        Route("/albums/{album_id:id}/plays", entities.album_plays, name="album_plays"),
        Route("/tracks/{track_id:id}", entities.track_page, name="track"),
        Route("/tracks/{track_id:id}/plays", entities.track_plays, name="track_plays"),
        Route("/hidden", hiding.hidden_page, name="hidden"),
        Route("/hidden", hiding.hide, methods=["POST"], name="hide"),
        Route("/hidden/{rule_id:id}/delete", hiding.unhide, methods=["POST"], name="unhide"),
        Route("/playlists", playlists.playlists_page, name="playlists"),
        Route("/playlists", playlists.create, methods=["POST"], name="playlists_create"),
        Route("/playlists/preview", playlists.preview, name="playlists_preview"),
        Route("/playlists/preview", playlists.preview_form, methods=["POST"],
              name="playlists_preview_form"),
        Route("/playlists/{playlist_id:int}", playlists.detail, name="playlist"),
        Route("/playlists/{playlist_id:int}/retry", playlists.retry, methods=["POST"],
              name="playlist_retry"),
        Route("/playlists/{playlist_id:int}/rename", playlists.rename_form,
              name="playlist_rename"),
        Route("/playlists/{playlist_id:int}/rename", playlists.rename, methods=["POST"],
              name="playlist_rename_save"),
        Route("/playlists/{playlist_id:int}/delete", playlists.delete_confirm,
              name="playlist_delete"),
        Route("/playlists/{playlist_id:int}/delete", playlists.delete, methods=["POST"],
              name="playlist_delete_confirmed"),
        Route("/settings", settings_page.settings_page, name="settings"),
        Route("/settings/sync", settings_page.sync_status, name="settings_sync_status"),
        Route("/settings/sync", settings_page.sync_now, methods=["POST"], name="settings_sync"),
        Route("/settings/preferences", settings_page.save_preferences, methods=["POST"],
              name="settings_preferences"),
        Route("/settings/export/{fmt}", settings_page.export, name="settings_export"),
        Route("/settings/backups", settings_page.create_backup, methods=["POST"],
              name="settings_backup_create"),
        Route("/settings/backups/{backup_id:id}/download", settings_page.download_backup,
              name="settings_backup_download"),
        Route("/settings/backups/{backup_id:id}/restore", settings_page.confirm_restore,
              name="settings_restore_confirm"),
        Route("/settings/backups/{backup_id:id}/restore", settings_page.restore,
              methods=["POST"], name="settings_restore"),
        Route("/settings/backups/{backup_id:id}/delete", settings_page.confirm_delete_backup,
              name="settings_backup_delete_confirm"),
        Route("/settings/backups/{backup_id:id}/delete", settings_page.delete_backup,
              methods=["POST"], name="settings_backup_delete"),
        Route("/settings/imports", imports.upload, methods=["POST"], name="settings_import"),
        Route("/settings/imports/sample.zip", imports.sample, name="settings_import_sample"),
        Route("/settings/imports/{import_id:id}", imports.detail, name="settings_import_detail"),
        Route("/settings/imports/{import_id:id}/undo", imports.confirm_undo,
              name="settings_import_undo_confirm"),
        Route("/settings/imports/{import_id:id}/undo", imports.undo, methods=["POST"],
              name="settings_import_undo"),
        Route("/jobs/{job_id:id}", jobs.job_page, name="job"),
        Route("/jobs/{job_id:id}/import", jobs.confirm_import, methods=["POST"],
              name="job_import"),
        Route("/jobs/{job_id:id}/retry", jobs.retry, methods=["POST"], name="job_retry"),
        Route("/jobs/{job_id:id}/discard", jobs.discard, methods=["POST"], name="job_discard"),
        Route("/settings/clear", settings_page.confirm_clear, name="settings_clear_confirm"),
        Route("/settings/clear", settings_page.clear, methods=["POST"], name="settings_clear"),
        Route("/settings/disconnect", settings_page.confirm_disconnect,
              name="settings_disconnect_confirm"),
        Route("/settings/disconnect", settings_page.disconnect, methods=["POST"],
              name="settings_disconnect"),
        Route("/household", household.household_page, name="household"),
        Route("/household/membership", household.membership, methods=["POST"],
              name="household_membership"),
        Route("/admin/stats", admin.admin_stats, name="admin_stats"),
        Route("/signin", auth.signin, name="signin"),
        Route("/login", auth.login, name="login"),
        Route("/callback", auth.callback, name="callback"),
        Route("/logout", auth.logout, methods=["POST"], name="logout"),
        Route("/healthz", health.healthz, name="healthz"),
        Route("/favicon.ico", assets.favicon, name="favicon"),
        Mount("/static", app=static_app(settings.static_dir), name="static"),
    ]
    if emulator is not None:
        routes.append(Mount("/emulator", routes=emulator.browser_routes(), name="emulator"))
    return routes
