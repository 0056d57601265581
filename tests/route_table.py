"""Every route of the app, read from its route table (mounts included), for generated tests."""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.convertors import Convertor
from starlette.routing import BaseRoute, Mount, Route

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-zA-Z_][a-zA-Z0-9_]*)?\}")


@dataclass(frozen=True)
class RouteInfo:
    """One route: its name, full path template, methods and path parameters."""

    name: str
    path: str
    methods: tuple[str, ...]
    params: dict[str, Convertor]

    def url(self, values: dict[str, str]) -> str:
        """The path with each parameter replaced by `values[name]`."""
        return _PARAM.sub(lambda m: values[m.group(1)], self.path)

    @property
    def key(self) -> str:
        """A stable label: the name, or the path for unnamed routes."""
        return self.name or self.path


def app_routes(routes: list[BaseRoute], prefix: str = "", mount: str = "") -> list[RouteInfo]:
    """Every route in the table; a mounted app without routes (static files) is one route."""
    found: list[RouteInfo] = []
    for route in routes:
        if isinstance(route, Mount):
            inner = getattr(route, "routes", None) or []
            name = f"{mount}{route.name}:" if route.name else mount
            if inner:
                found += app_routes(inner, prefix + route.path, name)
            else:
                found.append(RouteInfo(f"{mount}{route.name}", prefix + route.path + "/{path}",
                                       ("GET",), dict(route.param_convertors)))
        elif isinstance(route, Route):
            methods = tuple(sorted((route.methods or {"GET"}) - {"HEAD"}))
            found.append(RouteInfo(f"{mount}{route.name}", prefix + route.path, methods,
                                   dict(route.param_convertors)))
    return found


def unsafe(routes: list[RouteInfo]) -> list[tuple[str, RouteInfo]]:
    """(method, route) for every state-changing method of every route."""
    return [(method, r) for r in routes for method in r.methods if method in UNSAFE]
