"""The API's route table (issue 15, Deliver 3): every route of the application has a role
rule in ``ROUTE_ROLES`` and every rule a route; every operation is described in Chinese
in /openapi.json; every POST requires an Idempotency-Key; every error it documents is
``application/problem+json``."""

from __future__ import annotations

import argparse
import re

from fastapi.routing import APIRoute

from personalize.api.access import PUBLIC, ROUTE_ROLES
from personalize.api.app import ROUTERS, create_app

CJK = re.compile(r"[\u4e00-\u9fff]")


def app_routes() -> set[tuple[str, str]]:
    """Every route of the routers the application includes, and every operation its
    OpenAPI document names (the same set, or a route escaped one of the two)."""
    declared = {
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    paths = openapi()["paths"]
    assert isinstance(paths, dict)
    served = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert declared == served
    return declared


def openapi() -> dict[str, object]:
    return create_app(argparse.Namespace(track_key=None)).openapi()


def test_every_route_has_a_role_rule_and_every_rule_a_route() -> None:
    routes = app_routes()
    assert routes - set(ROUTE_ROLES) == set(), "routes without a role rule"
    assert set(ROUTE_ROLES) - routes == set(), "role rules without a route"


def test_only_health_and_readiness_are_public() -> None:
    public = {route for route, roles in ROUTE_ROLES.items() if roles is PUBLIC}
    assert public == {("GET", "/v1/health"), ("GET", "/v1/ready")}
    assert all(roles for route, roles in ROUTE_ROLES.items() if roles is not PUBLIC)


def test_openapi_describes_every_operation_in_chinese() -> None:
    spec = openapi()
    assert CJK.search(str(spec["info"]))
    paths = spec["paths"]
    assert isinstance(paths, dict)
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert CJK.search(operation.get("summary", "")), (method, path)
            if method == "post":
                headers = [p for p in operation["parameters"] if p["in"] == "header"]
                assert [(h["name"], h["required"]) for h in headers] == [
                    ("Idempotency-Key", True)
                ], path
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert set(response["content"]) >= {"application/problem+json"}, (
                        path, status,
                    )  # fmt: skip
