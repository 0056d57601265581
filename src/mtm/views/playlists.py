"""The Playlists page: preview a source, create it on Spotify, retry, rename and delete.

The handlers parse the form, call one function of mtm.playlist_workflow and show its outcome.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette_wtf import csrf_protect

from mtm import playlist_workflow as workflow
from mtm import playlists
from mtm.playlist_workflow import Status
from mtm.playlists import Choice, Playlist
from mtm.rendering import (
    RefusedForm,
    redirect,
    redirect_after_post,
    refuse_form,
    render,
    take_refused_form,
)
from mtm.session import current_user, login_required
from mtm.views.errors import error_response

FIELDS = ("source", "year", "count", "name")
CREATE_FORM = "playlist_create"
NOT_YOURS = "There is no such playlist among yours."
# Deleting now goes through the library (DELETE /me/library), which needs a permission that
# sign-ins from before it was asked for lack.
RECONNECT_TO_DELETE = ("Spotify needs one more permission from you before this app can delete "
                       "playlists: your sign-in is older than it. Reconnect Spotify to grant "
                       "it, then delete again. The playlist was not deleted.")


@dataclass(frozen=True)
class Notice:
    """Why a request made no playlist, shown where the result would have been."""

    title: str
    message: str
    hint: str | None = None
    tone: str = "error"


def _field(form: FormData | Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _new_key() -> str:
    return str(uuid.uuid4())


async def _page(request: Request, user_id: int, *, values: dict[str, str],
                choice: Choice | None, fragment: str, status_code: int = 200,
                errors: dict[str, str] | None = None, key: str | None = None,
                years: list[int] | None = None, result: Playlist | None = None,
                notice: Notice | None = None, oob: bool = False, already: bool = False,
                data: playlists.Overview | None = None) -> Response:
    """The Playlists page, or one of its fragments for HTMX, with everything it shows."""
    if data is None:
        data = await request.app.state.services.db.run(playlists.overview, user_id, choice,
                                                       years=years)
    context = {
        "sources": list(playlists.SOURCES.values()), "years": data.years, "values": values,
        "errors": errors or {}, "key": key or _new_key(), "preview": data.preview,
        "result": result, "already": already, "notice": notice, "playlists": data.playlists,
        "oob": oob, "max_count": playlists.MAX_COUNT, "name_max": playlists.NAME_MAX,
    }
    return render(request, "playlists", fragment, context, status_code=status_code)


def _no_tracks(preview: playlists.Preview, years: list[int]) -> Notice:
    source = preview.source
    if source.needs_year and not years:
        return Notice(f"No tracks for {source.label} yet",
                      "You have no plays yet, so there is no year to review.", tone="info")
    return Notice(f"No tracks for {source.label} yet", source.empty_hint,
                  "Only tracks with a Spotify id can go on a playlist; plays imported without "
                  "one are left out.", tone="info")


async def _refused_create(request: Request, user_id: int, *, values: dict[str, str],
                          choice: Choice | None, years: list[int], status_code: int,
                          key: str | None = None, errors: dict[str, str] | None = None,
                          notice: Notice | None = None, oob: bool = False) -> Response:
    """A create that made nothing: post/redirect/get without JavaScript, else the fragment."""
    kept = {**values, "key": key or "",
            "notice": dataclasses.asdict(notice) if notice else None}
    if plain := refuse_form(request, request.url_for("playlists").path + "#new-playlist-title",
                            CREATE_FORM, values=kept, errors=errors, status_code=status_code):
        return plain
    fragment = "playlist_form" if errors else "playlist_result"
    return await _page(request, user_id, values=values, choice=choice, years=years,
                       fragment=fragment, errors=errors, key=key, notice=notice, oob=oob,
                       status_code=status_code)


async def _refused_page(request: Request, user_id: int, refused: RefusedForm) -> Response:
    """The Playlists page once more with what a refused create was sent with, and why."""
    db = request.app.state.services.db
    years = await db.run(playlists.years_with_plays, user_id)
    values = {name: str(refused.values.get(name) or "") for name in FIELDS}
    choice, _, _ = playlists.parse_choice(values, years)
    key = str(refused.values.get("key") or "")
    notice = refused.values.get("notice")
    return await _page(request, user_id, values=values, choice=choice, years=years,
                       fragment="playlists", errors=refused.errors,
                       key=key if playlists.valid_key(key) else None,
                       notice=Notice(**notice) if isinstance(notice, dict) else None,
                       status_code=refused.status)


@login_required
async def playlists_page(request: Request) -> Response:
    """The form with a preview of the preferred source, the last result, and the history."""
    user = await current_user(request)
    db = request.app.state.services.db
    if refused := take_refused_form(request, CREATE_FORM):
        return await _refused_page(request, user.id, refused)
    result = None
    raw = request.query_params.get("created", "")
    if raw.isdigit() and len(raw) <= 18:
        result = await db.run(playlists.get_playlist, user.id, int(raw))
    choice = await db.run(playlists.initial_choice, user.id,
                          result.source if result else None, result.year if result else None)
    return await _page(request, user.id, values=playlists.values_of(choice), choice=choice,
                       fragment="playlists", result=result)


@login_required
async def preview(request: Request) -> Response:
    """The tracks a source would add: the page without JavaScript, the preview for HTMX."""
    user = await current_user(request)
    services = request.app.state.services
    db = services.db
    years = await db.run(playlists.years_with_plays, user.id)
    choice, values, errors = playlists.parse_choice(request.query_params, years)
    if choice is None:
        return await _page(request, user.id, values=values, choice=None, years=years,
                           fragment="playlist_preview", errors=errors, status_code=422)
    data = await db.run(playlists.overview, user.id, choice, years=years,
                        cache=services.read_cache)
    assert data.preview is not None
    return await _page(request, user.id, values=values, choice=choice, data=data,
                       fragment="playlist_preview",
                       status_code=200 if data.preview.tracks else 404)


@login_required
@csrf_protect
async def preview_form(request: Request) -> Response:
    """The Preview button without JavaScript: on to the preview's own address."""
    form = await request.form()
    query = urlencode({name: _field(form, name) for name in FIELDS})
    return redirect(request, f"{request.url_for('playlists_preview').path}?{query}")


@login_required
@csrf_protect
async def create(request: Request) -> Response:
    """Create the chosen playlist on Spotify, once per form and per request, with its tracks."""
    user = await current_user(request)
    services = request.app.state.services
    form = await request.form()
    years = await services.db.run(playlists.years_with_plays, user.id)
    choice, values, errors = playlists.parse_choice({n: _field(form, n) for n in FIELDS}, years)
    key = _field(form, "idempotency_key")
    if not playlists.valid_key(key):
        errors["form"] = ("This form is missing its one-time key, so it could create a "
                          "playlist twice. Reload the page and try again.")
        key = ""
    refused = partial(_refused_create, request, user.id, values=values, choice=choice,
                      years=years)
    if choice is None or errors:
        return await refused(key=key, errors=errors, status_code=422)
    outcome = await workflow.create(services.db, services.spotify, user.id, key, choice)
    page = partial(_page, request, user.id, values=values, choice=choice, years=years,
                   fragment="playlist_result")
    status, playlist = outcome.status, outcome.playlist
    if status is Status.NO_TRACKS:
        assert outcome.preview is not None
        return await refused(key=key, status_code=404,
                             notice=_no_tracks(outcome.preview, years))
    if status is Status.NOT_CREATED:
        assert outcome.error is not None
        return await refused(key=key, status_code=outcome.error.status, notice=Notice(
            "Spotify did not create the playlist", outcome.error.message,
            "Nothing was created on Spotify. This form is still good: press Create again "
            "when Spotify is back."))
    if status is Status.BUSY:
        return await refused(key=key, status_code=409, notice=Notice(
            "This playlist is already being created",
            "An earlier press of Create is still talking to Spotify.",
            "Wait a moment, then reload the page to see it in your playlists.", tone="warning"))
    if status is Status.USED:
        assert playlist is not None
        # oob: the form gets a new key, with which Create makes a new playlist.
        return await refused(oob=True, status_code=409, notice=Notice(
            "This form was used already",
            f"It made “{playlist.name}”, which you have since deleted.",
            "The form now has a new key: press Create again to make a new playlist."))
    if status is Status.ALREADY:
        assert playlist is not None
        if plain := redirect_after_post(
                request, _created_url(request, playlist),
                f"Already created: that request made “{playlist.name}” before, so no second "
                "playlist was made.", "info"):
            return plain
        return await page(result=playlist, already=True, oob=True)
    return await _outcome(request, user.id, outcome, values=values, choice=choice,
                          message=f"Created “{playlist.name}” on Spotify with "
                                  f"{_tracks(playlist.track_count)}." if playlist else "",
                          status_code=201)


def _tracks(n: int) -> str:
    return f"{n} track{'s' if n != 1 else ''}"


async def _outcome(request: Request, user_id: int, outcome: workflow.Outcome, *,
                   values: dict[str, str], choice: Choice, message: str,
                   status_code: int) -> Response:
    """Show a playlist after create or retry: complete, or made with tracks still missing."""
    playlist, error = outcome.playlist, outcome.error
    if playlist is None:
        notice = Notice("The playlist was deleted meanwhile",
                        "It was deleted while its tracks were being added.", tone="warning")
        return await _page(request, user_id, values=values, choice=choice, notice=notice,
                           fragment="playlist_result", oob=True, status_code=409)
    if error is None and (plain := redirect_after_post(request, _created_url(request, playlist),
                                                       message)):
        return plain
    # The form's key now belongs to this playlist, so the form gets a fresh one.
    return await _page(request, user_id, values=values, choice=choice, fragment="playlist_result",
                       result=playlist, oob=True,
                       status_code=error.status if error else status_code)


def _created_url(request: Request, playlist: Playlist) -> str:
    return f"{request.url_for('playlists').path}?created={playlist.id}"


async def _own(request: Request) -> tuple[int, Playlist | None]:
    user = await current_user(request)
    playlist_id = request.path_params["playlist_id"]
    return user.id, await request.app.state.services.db.run(playlists.get_playlist, user.id,
                                                            playlist_id)


def _on_its_page(request: Request, playlist: Playlist) -> bool:
    """True when HTMX asks from the playlist's own page, whose title and heading name it."""
    current = urlsplit(request.headers.get("HX-Current-URL", "")).path
    return current == request.url_for("playlist", playlist_id=playlist.id).path


@login_required
async def detail(request: Request) -> Response:
    """One playlist with its tracks; for HTMX its row in the list (the Cancel of a form)."""
    user_id, playlist = await _own(request)
    if playlist is None:
        return error_response(request, 404, NOT_YOURS)
    tracks = await request.app.state.services.db.run(playlists.playlist_tracks, user_id,
                                                     playlist.id)
    return render(request, "playlist", "playlist_item",
                  {"p": playlist, "tracks": tracks, "notice": None, "oob": False,
                   "already": False, "result": None if playlist.complete else playlist})


@login_required
@csrf_protect
async def retry(request: Request) -> Response:
    """Add the tracks that failed to reach Spotify, to the same playlist."""
    user = await current_user(request)
    services = request.app.state.services
    outcome = await workflow.retry(services.db, services.spotify, user.id,
                                   request.path_params["playlist_id"])
    if outcome.status is Status.NOT_FOUND:
        return error_response(request, 404, NOT_YOURS)
    playlist = outcome.playlist
    choice = await services.db.run(playlists.initial_choice, user.id,
                                   playlist.source if playlist else None,
                                   playlist.year if playlist else None)
    values = playlists.values_of(choice)
    if outcome.status is Status.COMPLETE:
        assert playlist is not None
        if plain := redirect_after_post(request, _created_url(request, playlist),
                                        f"Every track is already on “{playlist.name}”.", "info"):
            return plain
        return await _page(request, user.id, values=values, choice=choice, result=playlist,
                           fragment="playlist_result", oob=True)
    if outcome.status is Status.BUSY:
        assert playlist is not None
        notice = Notice("Tracks are already being added",
                        f"Another request is adding the missing tracks to “{playlist.name}”.",
                        "Wait a moment, then reload the page.", tone="warning")
        return await _page(request, user.id, values=values, choice=choice, notice=notice,
                           fragment="playlist_result", status_code=409)
    return await _outcome(request, user.id, outcome, values=values, choice=choice,
                          message=f"All {playlist.track_count} tracks are now on "
                                  f"“{playlist.name}”." if playlist else "",
                          status_code=200)


def _rename_form(request: Request, playlist: Playlist, name: str, error: str | None = None,
                 status_code: int = 200) -> Response:
    return render(request, "playlist_rename", "playlist_rename",
                  {"p": playlist, "new_name": name, "error": error, "name_max": playlists.NAME_MAX},
                  status_code=status_code)


def _refused_rename(request: Request, playlist: Playlist, name: str, problem: str,
                    status_code: int) -> Response:
    """The rename form again with the name and the problem (post/redirect/get when plain)."""
    return refuse_form(request, request.url.path, request.url.path, values={"name": name},
                       problem=problem, status_code=status_code) or \
        _rename_form(request, playlist, name, problem, status_code)


@login_required
async def rename_form(request: Request) -> Response:
    """The rename form: a page without JavaScript, in place of the list row with HTMX."""
    _, playlist = await _own(request)
    if playlist is None:
        return error_response(request, 404, NOT_YOURS)
    if refused := take_refused_form(request, request.url.path):
        return _rename_form(request, playlist, str(refused.values.get("name") or ""),
                            refused.problem, refused.status)
    return _rename_form(request, playlist, playlist.name)


@login_required
@csrf_protect
async def rename(request: Request) -> Response:
    """Rename the playlist on Spotify, then here; with HTMX every heading naming it follows."""
    user_id, playlist = await _own(request)
    if playlist is None:
        return error_response(request, 404, NOT_YOURS)
    services = request.app.state.services
    name = _field(await request.form(), "name").strip()
    problem = playlists.name_problem(name, required=True)
    if problem:
        return _refused_rename(request, playlist, name, problem, 422)
    outcome = await workflow.rename(services.db, services.spotify, user_id, playlist.id, name)
    if outcome.status is Status.NOT_FOUND:
        return error_response(request, 404, NOT_YOURS)
    if outcome.status is Status.FAILED:
        assert outcome.error is not None
        return _refused_rename(request, playlist, name,
                               f"Spotify did not rename it: {outcome.error.message}",
                               outcome.error.status)
    renamed = outcome.playlist
    assert renamed is not None
    if plain := redirect_after_post(request, request.url_for("playlists").path,
                                    f"Renamed to “{renamed.name}”."):
        return plain
    return render(request, "playlist", "playlist_renamed",
                  {"p": renamed, "item_note": f"Renamed to “{renamed.name}”.",
                   "on_its_page": _on_its_page(request, renamed)})


def _delete_form(request: Request, playlist: Playlist, error: str | None = None,
                 status_code: int = 200) -> Response:
    return render(request, "playlist_delete", "playlist_delete",
                  {"p": playlist, "error": error, "reconnect": error == RECONNECT_TO_DELETE},
                  status_code=status_code)


def _refused_delete(request: Request, playlist: Playlist, problem: str,
                    status_code: int) -> Response:
    """The delete confirmation again with why (post/redirect/get when plain)."""
    return refuse_form(request, request.url.path, request.url.path, problem=problem,
                       status_code=status_code) or \
        _delete_form(request, playlist, problem, status_code)


@login_required
async def delete_confirm(request: Request) -> Response:
    """Ask before deleting: a page without JavaScript, in place of the list row with HTMX."""
    _, playlist = await _own(request)
    if playlist is None:
        return error_response(request, 404, NOT_YOURS)
    if refused := take_refused_form(request, request.url.path):
        return _delete_form(request, playlist, refused.problem, refused.status)
    return _delete_form(request, playlist)


@login_required
@csrf_protect
async def delete(request: Request) -> Response:
    """Delete (unfollow) the playlist on Spotify, then drop it from the list."""
    user_id, playlist = await _own(request)
    if playlist is None:
        return error_response(request, 404, NOT_YOURS)
    services = request.app.state.services
    if _field(await request.form(), "confirm") != "delete":
        return _refused_delete(request, playlist, "Confirm with the “Delete playlist” button.",
                               422)
    outcome = await workflow.delete(services.db, services.spotify, user_id, playlist.id)
    if outcome.status is Status.NOT_FOUND:
        return error_response(request, 404, NOT_YOURS)
    if outcome.status is Status.RECONNECT:
        return _refused_delete(request, playlist, RECONNECT_TO_DELETE, 403)
    if outcome.status is Status.FAILED:
        assert outcome.error is not None
        return _refused_delete(request, playlist,
                               f"Spotify did not delete it: {outcome.error.message}",
                               outcome.error.status)
    if plain := redirect_after_post(request, request.url_for("playlists").path,
                                    f"Deleted “{playlist.name}”."):
        return plain
    return render(request, "playlist_delete", "playlist_deleted",
                  {"p": playlist, "on_its_page": _on_its_page(request, playlist)})
