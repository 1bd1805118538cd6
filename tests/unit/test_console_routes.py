"""The console's page table (issue 16, Deliver 2; docs/console.md): every route of every
section has an access rule and every rule a route; forms take their roles from the one
permission table of ``personalize.roles``."""

from __future__ import annotations

import inspect

from fastapi.routing import APIRoute

from personalize.registry import AGENT_DOCUMENTS
from personalize.roles import ACTIONS, PERMISSIONS, Role
from personalize.web.access import PUBLIC
from personalize.web.app import SECTIONS, page_table

PAGES = page_table(SECTIONS)


def test_every_route_has_an_access_rule_and_every_rule_a_route() -> None:
    routes = {
        (method, route.path)
        for section in SECTIONS
        for route in section.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert routes - set(PAGES) == set(), "console routes without an access rule"
    assert set(PAGES) - routes == set(), "access rules without a route"


def test_only_the_login_form_is_public_and_every_form_names_its_action() -> None:
    public = {key for key, access in PAGES.items() if access is PUBLIC}
    assert public == {("GET", "/login"), ("POST", "/login")}
    for (method, path), access in PAGES.items():
        if method == "POST" and access is not PUBLIC and path != "/logout":
            assert access.action in ACTIONS, path
            assert access.roles == {r for r in Role if access.action in PERMISSIONS[r]}, path
        if access is not PUBLIC:
            assert Role.SUPERVISOR in access.roles, (method, path)


def test_every_form_naming_an_agent_defaults_to_the_documents_an_agent_shows() -> None:
    """review17 #16: a post without ``agent_documents`` (not a browser's) that names an agent
    is taken with the documents every card form assumes (``AGENT_DOCUMENTS``), the 换领's
    as the others'."""
    forms = {
        route.path: param.default
        for section in SECTIONS
        for route in section.router.routes
        if isinstance(route, APIRoute)
        for param in inspect.signature(route.endpoint).parameters.values()
        if param.name == "agent_documents"
    }
    assert "/counter/cards/{card_number}/change" in forms
    assert set(forms.values()) == {AGENT_DOCUMENTS}, forms
