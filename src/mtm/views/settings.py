"""Settings: connection and sync now, preferences, exports, backups, clear, disconnect."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette_wtf import csrf_protect

from mtm import (
    backups,
    connection,
    exports,
    household,
    imports,
    jobs,
    periods,
    preferences,
    rezone,
    sync,
    users,
)
from mtm.ratelimit import DOWNLOAD, rate_limited
from mtm.rendering import (
    flash,
    is_partial,
    redirect,
    redirect_after_post,
    refuse_form,
    render,
    take_refused_form,
)
from mtm.session import current_user, end_all_sessions, login_required
from mtm.views.errors import error_response
from mtm.views.imports import UPLOAD_FORM

CLEAR_WORD = "DELETE"
# Seconds a preferences form waits for a time-zone change before answering without it.
REZONE_WAIT = 3.0
HISTORY_CHOICES = ("keep", "delete")
CHOICES = {
    "playlist_sources": preferences.playlist_sources(),
    "week_starts": preferences.WEEK_STARTS,
    "chart_metrics": preferences.CHART_METRICS,
}


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _form_values(prefs: preferences.Preferences) -> dict[str, str]:
    return {"timezone": prefs.timezone, "week_start": str(prefs.week_start),
            "chart_metric": prefs.chart_metric, "playlist_source": prefs.playlist_source}


async def _context(request: Request, user: users.User, **extra: Any) -> dict[str, Any]:
    """Everything the Settings page and its fragments show."""
    services = request.app.state.services
    db = services.db
    prefs = await db.run(preferences.load, user.id)
    sync_job = await db.run(connection.active_sync_job, user.id)
    if sync_job is not None:
        sync_job = services.jobs.freshen(sync_job)
    lease = await db.run(connection.history_lease, user.id)
    context = {
        "connection": await db.run(connection.load, user.id),
        "prefs": prefs,
        "values": _form_values(prefs),
        "errors": {},
        "timezones": preferences.suggested_timezones(),
        "run": await db.run(sync.latest_run, user.id),
        "sync_job": sync_job,
        "syncing": sync_job is not None or await db.run(connection.sync_running, user.id),
        "sync_failure": None if sync_job else await db.run(connection.unrecorded_failure,
                                                             user.id),
        # Something other than a sync holding the history (a restore, an import...): said.
        "busy": lease if lease is not None and lease.kind != "sync" else None,
        "imports": await db.run(imports.overview, user.id, services.settings.uploads_dir),
        "source_labels": imports.SOURCE_LABELS,
        "month_names": imports.MONTHS,
        "backups": await db.run(backups.list_backups, services.settings.backups_dir, user.id),
        "keep_auto": backups.KEEP_AUTO,
        "scope_labels": connection.SCOPE_LABELS,
        "import_problem": None,
        "rezoning": await db.run(rezone.pending, user.id),
        "household_member": await db.run(household.is_member, user.id),
        **CHOICES,
    }
    context.update(extra)
    return context


async def _done(request: Request, user: users.User, fragment: str) -> Response:
    """After a successful POST: redirect a plain form, give HTMX the updated fragment."""
    # The message is already queued: the fragment shows it, or the page after the redirect.
    if plain := redirect_after_post(request, request.url_for("settings").path):
        return plain
    return render(request, "settings", fragment, await _context(request, user))


# --- the page and sync now -----------------------------------------------------------


@login_required
async def settings_page(request: Request) -> Response:
    """Every setting of the signed-in user (with preferences refused just before, once)."""
    user = await current_user(request)
    extra: dict[str, Any] = {}
    if refused := take_refused_form(request, "preferences"):
        extra = {"values": refused.values, "errors": refused.errors}
    elif refused := take_refused_form(request, UPLOAD_FORM):
        extra = {"import_problem": refused.problem}
    return render(request, "settings", "settings_main", await _context(request, user, **extra),
                  status_code=refused.status if refused else 200)


@login_required
async def sync_status(request: Request) -> Response:
    """The sync status; polled by HTMX every second while a sync runs."""
    user = await current_user(request)
    return render(request, "settings", "settings_sync", await _context(request, user))


@login_required
@csrf_protect
async def sync_now(request: Request) -> Response:
    """Start a sync job: HTMX gets the status that polls; a plain form waits and redirects."""
    user = await current_user(request)
    services = request.app.state.services
    try:
        job = await services.db.run(connection.queue_sync, user.id)
    except connection.Busy:
        flash(request, "A sync of your account is already running; its progress is shown "
              "below. Nothing new was started.", "info")
        return render(request, "settings", "settings_sync", await _context(request, user),
                      status_code=409)
    services.jobs.submit(job)
    if is_partial(request):
        return render(request, "settings", "settings_sync", await _context(request, user),
                      status_code=202)
    # Without JavaScript the answer waits for the (short) sync; a dropped connection does
    # not cancel it.
    await asyncio.shield(services.jobs.wait(job.id))
    finished = await services.db.run(jobs.get, user.id, job.id)
    run_id = (finished.result or {}).get("run_id")
    run = await services.db.run(sync.get_run, run_id) if run_id else None
    timezone = (await services.db.run(preferences.load, user.id)).timezone
    if run is None:
        flash(request, f"The sync did not run: {finished.error}", "error")
    else:
        flash(request, *reversed(connection.sync_outcome(run, timezone)))
    return redirect(request, request.url_for("settings").path)


# --- preferences -------------------------------------------------------------------------


@login_required
@csrf_protect
async def save_preferences(request: Request) -> Response:
    """Store the preferences; 422 with the error next to the field when invalid."""
    user = await current_user(request)
    form = await request.form()
    submitted = {key: str(form.get(key, ""))[:200] for key in
                 ("timezone", "week_start", "chart_metric", "playlist_source")}
    prefs, errors = preferences.parse_form(submitted)
    if prefs is None:
        if plain := refuse_form(request, request.url_for("settings").path + "#preferences",
                                "preferences", values=submitted, errors=errors):
            return plain
        return render(request, "settings", "settings_preferences",
                      await _context(request, user, values=submitted, errors=errors),
                      status_code=422)
    services = request.app.state.services
    changed = await services.db.run(preferences.save, user.id, prefs, recount=False)
    message, category = "Preferences saved.", "success"
    if changed:
        message, category = await _change_timezone(request, user, prefs.timezone)
    flash(request, message, category)
    return await _done(request, user, "settings_preferences")


async def _change_timezone(request: Request, user: users.User, timezone: str
                           ) -> tuple[str, str]:
    """Recount the days and hours in a new zone as a job; wait a little for it to end."""
    services = request.app.state.services
    job = await services.db.run(rezone.queue, user.id, timezone)
    if job is None:
        return ("Preferences saved, except the time zone: a change of your time zone is "
                "already running. Save again once it has finished.", "warning")
    services.jobs.submit(job)
    # A small history is recounted at once; a big one carries on in the background (its
    # transactions are short, so nothing else waits for it) and the page says so.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(services.jobs.wait(job.id)), REZONE_WAIT)
    finished = await services.db.run(jobs.get, user.id, job.id)
    if finished.state == "done":
        return f"Preferences saved. Days and hours are now counted in {timezone}.", "success"
    if finished.active:
        return (f"Preferences saved. Your days and hours are being counted again in "
                f"{timezone}; until that is finished, pages show them in the zone before.",
                "info")
    return (f"Preferences saved, except the time zone: {finished.error}", "error")


# --- exports -----------------------------------------------------------------------------


@login_required
@rate_limited(DOWNLOAD)
async def export(request: Request) -> Response:
    """Download this user's data as SQLite, JSON or CSV (a GET: it changes nothing)."""
    fmt = request.path_params["fmt"]
    if fmt not in exports.FORMATS:
        return error_response(request, 404, "There is no export in that format. "
                              "Choose SQLite, JSON or CSV.")
    user = await current_user(request)
    services = request.app.state.services
    timezone = (await services.db.run(preferences.load, user.id)).timezone
    name = exports.file_name(fmt, periods.local_today(timezone))
    media_type = exports.FORMATS[fmt][0]
    headers = {"Content-Disposition": f'attachment; filename="{name}"',
               "Cache-Control": "no-store"}
    if fmt == "json":
        return StreamingResponse(exports.stream_json(services.db, user.id),
                                 media_type=media_type, headers=headers)
    if fmt == "csv":
        return StreamingResponse(exports.stream_csv(services.db, user.id, timezone),
                                 media_type=media_type, headers=headers)
    temporary = exports.temporary_path(services.settings.data_dir, user.id)
    await services.db.run(exports.snapshot, user.id, temporary)
    return FileResponse(temporary, media_type=media_type, headers=headers,
                        background=BackgroundTask(temporary.unlink, missing_ok=True))


# --- backups -----------------------------------------------------------------------------


async def _own_backup(request: Request, user: users.User) -> backups.Backup | None:
    return await request.app.state.services.db.run(backups.get_backup, user.id,
                                                    request.path_params["backup_id"])


def _not_found(request: Request) -> Response:
    return error_response(request, 404, "There is no such backup among yours.")


@login_required
@csrf_protect
async def create_backup(request: Request) -> Response:
    """Make a backup by hand."""
    user = await current_user(request)
    services = request.app.state.services
    backup = await services.db.run(backups.create_backup, services.settings.backups_dir,
                                   user.id, "manual")
    flash(request, f"Backup made: {_n(backup.plays, 'play')}, {backup.size_label}.", "success")
    return await _done(request, user, "settings_backups")


@login_required
@rate_limited(DOWNLOAD)
async def download_backup(request: Request) -> Response:
    """Download one of this user's backup files."""
    user = await current_user(request)
    backup = await _own_backup(request, user)
    if backup is None:
        return _not_found(request)
    path = backups.path_of(request.app.state.services.settings.backups_dir, backup)
    if not path.is_file():
        return error_response(request, 404, "That backup's file is no longer on the server.")
    timezone = (await request.app.state.services.db.run(preferences.load, user.id)).timezone
    stamp = datetime.fromtimestamp(backup.created_at, ZoneInfo(timezone))
    return FileResponse(path, media_type=exports.FORMATS["sqlite"][0],
                        filename=f"music-time-machine-backup-{stamp:%Y-%m-%d-%H%M}.sqlite3",
                        headers={"Cache-Control": "no-store"})


async def _confirm(request: Request, user: users.User, fragment: str, title: str,
                   status_code: int = 200, values: dict[str, Any] | None = None,
                   **extra: Any) -> Response:
    """A confirmation step, its page or fragment; `values` is what the user sent.

    A POST here was refused: a plain form is redirected to the step's GET (the same path),
    which shows the input and the errors once, with the refusal's status.
    """
    if request.method == "POST" and (plain := refuse_form(
            request, request.url.path, request.url.path, values=values,
            errors=extra.get("form_errors"), problem=extra.get("problem"),
            status_code=status_code)):
        return plain
    if request.method == "GET" and (refused := take_refused_form(request, request.url.path)):
        values = refused.values
        extra.update(form_errors=refused.errors, problem=refused.problem)
        status_code = refused.status
    counts = await request.app.state.services.db.run(backups.data_counts, user.id)
    context = await _context(request, user, counts=counts, title=title, confirm=fragment,
                             **{**extra, **(values or {})})
    context.setdefault("form_errors", {})
    context.setdefault("problem", None)
    return render(request, "settings_confirm", fragment, context, status_code=status_code)


# (confirmation fragment, title, name of the button that confirms) of each backup action.
RESTORE = ("settings_restore", "Restore a backup", "Restore")
DELETE_BACKUP = ("settings_delete_backup", "Delete a backup", "Delete")


async def _backup_step(request: Request, user: users.User, action: tuple[str, str, str], *,
                       confirming: bool = False
                       ) -> tuple[backups.Backup | None, Response | None]:
    """The user's backup named in the URL, or the answer when it is not theirs or a POST
    lacks its confirmation (422)."""
    backup = await _own_backup(request, user)
    if backup is None:
        return None, _not_found(request)
    if confirming and (await request.form()).get("confirm") != "yes":
        fragment, title, button = action
        return backup, await _confirm(
            request, user, fragment, title, 422, backup=backup,
            problem=f"Use the {button} button on this page to confirm.")
    return backup, None


@login_required
async def confirm_restore(request: Request) -> Response:
    """Step one of a restore: what will be replaced, and a button to go on."""
    user = await current_user(request)
    backup, answer = await _backup_step(request, user, RESTORE)
    return answer or await _confirm(request, user, *RESTORE[:2], backup=backup)


@login_required
@csrf_protect
async def restore(request: Request) -> Response:
    """Replace this user's data with a backup's, after an automatic backup."""
    user = await current_user(request)
    backup, answer = await _backup_step(request, user, RESTORE, confirming=True)
    if answer:
        return answer
    services = request.app.state.services
    try:
        result = await services.db.run(backups.restore_backup, services.settings.backups_dir,
                                       user.id, backup.id)
    except backups.BackupError as exc:
        return await _confirm(request, user, *RESTORE[:2], exc.status, backup=backup,
                              problem=exc.message)
    if result is None:
        return _not_found(request)
    timezone = (await services.db.run(preferences.load, user.id)).timezone
    flash(request, (f"Restored the backup of {result.backup.created_label(timezone)}: "
                    f"{_n(result.plays, 'play')}. What you had just before was backed up first "
                    f"({result.safety.created_label(timezone)}); restore that one to undo this."),
          "success")
    return await _done(request, user, "settings_main")


@login_required
async def confirm_delete_backup(request: Request) -> Response:
    """Step one of deleting a backup."""
    user = await current_user(request)
    backup, answer = await _backup_step(request, user, DELETE_BACKUP)
    return answer or await _confirm(request, user, *DELETE_BACKUP[:2], backup=backup)


@login_required
@csrf_protect
async def delete_backup(request: Request) -> Response:
    """Delete one of this user's backups."""
    user = await current_user(request)
    backup, answer = await _backup_step(request, user, DELETE_BACKUP, confirming=True)
    if answer:
        return answer
    services = request.app.state.services
    await services.db.run(backups.delete_backup, services.settings.backups_dir, user.id,
                          backup.id)
    timezone = (await services.db.run(preferences.load, user.id)).timezone
    flash(request, f"Deleted the backup of {backup.created_label(timezone)}.", "success")
    return await _done(request, user, "settings_backups")


# --- clear all data ----------------------------------------------------------------------


@login_required
async def confirm_clear(request: Request) -> Response:
    """Step one of clearing all data: the counts, a checkbox and the word DELETE."""
    user = await current_user(request)
    return await _confirm(request, user, "settings_clear", "Clear all data",
                          typed="", understood=False)


@login_required
@csrf_protect
async def clear(request: Request) -> Response:
    """Step two: check both confirmations, back up, then delete the listening data."""
    user = await current_user(request)
    form = await request.form()
    typed = str(form.get("confirm", ""))[:50]
    understood = form.get("understand") == "yes"
    errors = {}
    if not understood:
        errors["understand"] = "Tick the box to confirm you understand what will be deleted."
    if typed.strip() != CLEAR_WORD:
        errors["confirm"] = f"Type {CLEAR_WORD} in capital letters to confirm."
    if errors:
        return await _confirm(request, user, "settings_clear", "Clear all data", 422,
                              {"typed": typed, "understood": understood}, form_errors=errors)
    services = request.app.state.services
    try:
        counts, backup = await services.db.run(backups.clear_with_backup,
                                                services.settings.backups_dir, user.id)
    except backups.BackupError as exc:
        return await _confirm(request, user, "settings_clear", "Clear all data", exc.status,
                              {"typed": typed, "understood": understood}, problem=exc.message)
    timezone = (await services.db.run(preferences.load, user.id)).timezone
    # The same things, counted the same way, as the confirmation step listed.
    flash(request, (f"Deleted all your listening data: {_n(counts.plays, 'play')}, "
                    f"{_n(counts.snapshots, 'top-list snapshot')}, "
                    f"{_n(counts.sync_runs, 'sync run')}, {_n(counts.imports, 'import')} and "
                    f"{_n(counts.playlists, 'playlist')} from your Playlists page (those stay "
                    "on Spotify). A backup was taken first "
                    f"({backup.created_label(timezone)}): to get everything back, choose Restore "
                    "next to it under Backups."), "success")
    return await _done(request, user, "settings_main")


# --- disconnect --------------------------------------------------------------------------


@login_required
async def confirm_disconnect(request: Request) -> Response:
    """Step one of disconnecting: keep or delete the history."""
    user = await current_user(request)
    return await _confirm(request, user, "settings_disconnect", "Disconnect Spotify",
                          history_choice="keep")


@login_required
@csrf_protect
async def disconnect(request: Request) -> Response:
    """Forget the Spotify tokens, keep or delete the history, and sign out."""
    user = await current_user(request)
    form = await request.form()
    choice = form.get("history")
    if choice not in HISTORY_CHOICES or form.get("confirm") != "yes":
        return await _confirm(request, user, "settings_disconnect", "Disconnect Spotify", 422,
                              {"history_choice": choice if choice in HISTORY_CHOICES else ""},
                              form_errors={"history": "Choose whether to keep or delete your "
                                           "listening history."})
    services = request.app.state.services
    try:
        backup = await services.db.run(backups.disconnect, services.settings.backups_dir,
                                       user.id, delete_history=choice == "delete")
    except backups.BackupError as exc:
        return await _confirm(request, user, "settings_disconnect", "Disconnect Spotify",
                              exc.status, {"history_choice": choice}, problem=exc.message)
    # Every browser signed in to this account is signed out, not only this one.
    await end_all_sessions(request, user.id)
    if backup is None:
        flash(request, "Spotify is disconnected and you are signed out. Your listening history "
              "is kept: sign in with Spotify again to carry on recording.", "success")
    else:
        flash(request, "Spotify is disconnected, your listening history is deleted, and you are "
              "signed out. A backup was kept on this server: sign in again and restore it "
              "from Settings › Backups if you change your mind.", "success")
    return redirect(request, request.url_for("signin").path)
