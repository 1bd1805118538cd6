"""The HTTP API of the card center, ``sscard serve`` (issue 15; docs/api.md).

``app.create_app`` builds it; importing this package alone imports no web framework, so the
CLI's ``api-client`` commands (``clients``) need none."""
