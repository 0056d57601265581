"""Importing a Spotify privacy export from Settings: upload, an import's report, undo."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette_wtf import csrf_protect

from mtm import demo, imports, preferences, uploads
from mtm.ratelimit import UPLOAD, rate_limited
from mtm.rendering import refuse_form, render, take_refused_form
from mtm.session import current_user, login_required
from mtm.views.errors import error_response
from mtm.views.jobs import busy_response, queue, started

UPLOAD_FORM = "import_upload"


@login_required
@rate_limited(UPLOAD)
async def upload(request: Request) -> Response:
    """Receive the files, then preview them as a background job.

    The body is read by mtm.uploads, which checks the CSRF token before keeping a byte.
    """
    user = await current_user(request)
    services = request.app.state.services
    root = services.settings.uploads_dir
    try:
        received, _ = await uploads.receive(request, root, user.id,
                                            limit=services.settings.upload_limit)
    except uploads.UploadError as exc:
        # An upload refused for what it holds (too large, too many files, none chosen, no
        # room) goes back to Settings without JavaScript (post/redirect/get), the reason
        # shown once; a forged or broken request gets the error page.
        if exc.status in (413, 422, 507) and (plain := refuse_form(
                request, request.url_for("settings").path + "#import", UPLOAD_FORM,
                problem=exc.message, status_code=exc.status)):
            return plain
        return error_response(request, exc.status, exc.message)
    try:
        job = await services.db.run(imports.queue, user.id, imports.PREVIEW,
                                    {"upload": received.token})
    except imports.Busy as busy:
        received.remove()
        return busy_response(request, busy)
    services.jobs.submit(job)
    return await started(request, job.id, "Your files are uploaded.")


async def _own_import(request: Request) -> imports.ImportRecord | None:
    user = await current_user(request)
    return await request.app.state.services.db.run(imports.get_import, user.id,
                                                    request.path_params["import_id"])


def _not_found(request: Request) -> Response:
    return error_response(request, 404, "There is no such import among yours.")


async def _page(request: Request, *, confirming: bool, problem: str | None = None,
                status_code: int = 200) -> Response:
    """An import's report, or the confirmation of undoing it."""
    record = await _own_import(request)
    if record is None:
        return _not_found(request)
    if request.method == "GET" and (refused := take_refused_form(request, request.url.path)):
        # A plain form refused just before: its reason, once, with its status.
        problem, status_code = refused.problem, refused.status
    user = await current_user(request)
    timezone = (await request.app.state.services.db.run(preferences.load, user.id)).timezone
    return render(request, "import", "import_detail",
                  {"record": record, "timezone": timezone, "confirming": confirming,
                   "problem": problem}, status_code=status_code)


@login_required
async def detail(request: Request) -> Response:
    """One import's report: what it read, added, left out and why."""
    return await _page(request, confirming=False)


@login_required
async def confirm_undo(request: Request) -> Response:
    """Step one of undoing: how many plays go, and a button to go on."""
    return await _page(request, confirming=True)


@login_required
@csrf_protect
async def undo(request: Request) -> Response:
    """Step two: undo the import as a background job."""
    if (await request.form()).get("confirm") != "yes":
        problem = "Use the Undo button on this page to confirm."
        # Without JavaScript: back to the confirmation (post/redirect/get), which says why.
        if plain := refuse_form(request, request.url.path, request.url.path, problem=problem):
            return plain
        return await _page(request, confirming=True, status_code=422, problem=problem)
    record = await _own_import(request)
    if record is None:
        return _not_found(request)
    if not record.undoable:
        return error_response(request, 409, "This import has nothing to undo: it added no "
                              "plays, or it was undone already.")
    return await queue(request, imports.UNDO, {"import_id": record.id},
                       "Undoing the import has started.")


@login_required
async def sample(request: Request) -> Response:
    """Demo mode only: a generated export to try the import with."""
    services = request.app.state.services
    if not services.settings.demo:
        return error_response(request, 404, "Sample exports exist in demo mode only.")
    user = await current_user(request)
    name, data = await services.db.run(demo.sample_export, user.id)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})
