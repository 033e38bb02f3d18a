"""Print the server's OpenAPI document: ``python -m flowloom.webui.openapi > openapi.json``.

``npm run gen:api`` in ``web/`` turns that document into the UI's typed API client.
"""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
from pathlib import Path

from flowloom.api import create_app
from flowloom.settings import Settings

__all__ = ["openapi_document"]


def openapi_document() -> str:
    """The OpenAPI document as stable, indented JSON (no database is opened)."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), secret_key=secrets.token_urlsafe(32))
        app = create_app(settings)
        return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(openapi_document())
