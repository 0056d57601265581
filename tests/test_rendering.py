"""Template helpers of mtm.rendering."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from mtm.rendering import make_templates


def _request(router: Router) -> Request:
    return Request({"type": "http", "router": router, "app": router, "scheme": "http",
                    "server": ("testserver", 80), "path": "/", "root_path": "",
                    "query_string": b"", "headers": []})


def test_url_for_finds_each_route_once_and_builds_the_same_urls() -> None:
    async def endpoint(request: Request) -> Response:
        return Response()

    router = Router([Route("/", endpoint, name="home"),
                     Route("/items/{item_id:int}", endpoint, name="item")])
    looked_up = []
    real = router.url_path_for
    router.url_path_for = lambda name, **params: looked_up.append(name) or real(name, **params)
    template = make_templates().env.from_string(
        "{{ url_for('item', item_id=3) }} {{ url_for('item', item_id=4) }} "
        "{{ url_for('home').include_query_params(q='a b') }} {{ url_for('item', item_id=3) }}")
    for _ in range(2):
        shown = template.render(request=_request(router))
        assert shown == ("http://testserver/items/3 http://testserver/items/4 "
                         "http://testserver/?q=a+b http://testserver/items/3")
    assert sorted(looked_up) == ["home", "item", "item"]


async def test_pages_render_off_the_event_loop_with_their_length_and_vary() -> None:
    import threading
    from types import SimpleNamespace

    import httpx
    import jinja2
    from starlette.applications import Starlette

    from mtm.rendering import render

    templates = make_templates()
    templates.env.loader = jinja2.DictLoader({
        "pages/t.html": "page {{ thread() }} {{ word }} ✓",
        "partials/f.html": "fragment {{ thread() }}"})
    templates.env.globals["thread"] = lambda: threading.current_thread().name

    async def endpoint(request: Request) -> Response:
        return render(request, "t", "f", {"word": "hello"}, status_code=201)

    app = Starlette(routes=[Route("/", endpoint)])
    app.state.services = SimpleNamespace(templates=templates,
                                         settings=SimpleNamespace(demo=True))
    loop_thread = threading.current_thread().name
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        page = await client.get("/")
        fragment = await client.get("/", headers={"HX-Request": "true"})
    assert page.status_code == 201 and page.text.startswith("page ")
    assert page.text.endswith(" hello ✓")
    assert page.headers["content-length"] == str(len(page.content))
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["vary"] == "HX-Request"
    assert fragment.text.startswith("fragment ")
    for shown in (page.text, fragment.text):
        assert shown.split()[1] != loop_thread


async def test_a_cached_part_is_drawn_once_per_data_object_for_page_and_fragment() -> None:
    from types import SimpleNamespace

    import httpx
    import jinja2
    from starlette.applications import Starlette

    from mtm.rendering import render

    templates = make_templates()
    templates.env.loader = jinja2.DictLoader({
        "pages/p.html": "<main>{{ include_cached('partials/p.html', in_page=true) }}</main>",
        "partials/p.html": "{{ draw() }}:{{ data.n }}:{{ in_page is defined }}:<b>"})
    drawn = []
    templates.env.globals["draw"] = lambda: len(drawn.append(1) or drawn)
    current = {"data": SimpleNamespace(n=1)}

    async def endpoint(request: Request) -> Response:
        data = current["data"]
        return render(request, "p", "p", {"data": data}, cache=(data, ("k",)))

    app = Starlette(routes=[Route("/", endpoint)])
    app.state.services = SimpleNamespace(templates=templates,
                                         settings=SimpleNamespace(demo=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        pages = [(await client.get("/")).text for _ in range(3)]
        fragments = [(await client.get("/", headers={"HX-Request": "true"})).text
                     for _ in range(3)]
        assert pages == ["<main>1:1:True:<b></main>"] * 3
        assert fragments == ["2:1:False:<b>"] * 3
        # New data (a new play makes a new object): drawn anew.
        current["data"] = SimpleNamespace(n=2)
        assert (await client.get("/")).text == "<main>3:2:True:<b></main>"
        # Another host is another base URL for every link.
        other = await client.get("http://other/", headers={"HX-Request": "true"})
        assert other.text == "4:2:False:<b>"
