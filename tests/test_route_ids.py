"""Path parameters out of range or in odd forms are a 404 on every route, never a 500."""

from __future__ import annotations

import httpx

from mtm import backups
from tests.conftest import csrf_from, sign_in
from tests.route_table import app_routes

HX = {"HX-Request": "true"}
# Beyond SQLite's 64-bit integers, negative, zero, and zero-padded forms of a real id (1).
ODD_IDS = [str(2**63), str(2**64), str(10**30), str(2**63 - 1), "-1", "-0", "0", "00", "01",
           "0001", "+1", "1e3", "0x1", "1.0", " 1", "1%00", "１"]
ODD_WORDS = ["%00", "JSON", "sqlite3", "a" * 300, str(10**30), "-1", "null", "%ff", "con"]


def odd_values(convertor_name: str) -> list[str]:
    return ODD_IDS if convertor_name in ("RowId", "IntegerConvertor") else ODD_WORDS


async def test_every_path_parameter_out_of_range_is_a_404(client: httpx.AsyncClient,
                                                          app) -> None:
    await sign_in(client)
    services = app.state.services
    user_id = await services.db.run(
        lambda c: c.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0])
    # A real backup with id 1, so "01" and "0001" would find it if they were read as ids.
    made = await services.db.run(backups.create_backup, services.settings.backups_dir, user_id)
    assert made.id == 1
    token = csrf_from((await client.get("/settings")).text)
    routes = [r for r in app_routes(app.routes) if r.params]
    assert {"settings_backup_download", "playlist", "settings_export", "job"} <= {
        r.name for r in routes}
    tried = 0
    for route in routes:
        for name, convertor in route.params.items():
            for value in odd_values(type(convertor).__name__):
                values = {other: "1" for other in route.params} | {name: value}
                url = route.url(values)
                for method in route.methods:
                    for headers in ({}, HX):
                        response = await client.request(
                            method, url, headers={**headers, "X-CSRFToken": token})
                        tried += 1
                        assert response.status_code == 404, (
                            method, url, headers, response.status_code)
    assert tried > 500
    # The backup itself is still there and found by its own id.
    assert (await client.get("/settings/backups/1/download")).status_code == 200
