"""The web client's types are generated from the server's OpenAPI document: the copy in web/
must be the document the app serves now, so a route changed without regenerating fails here
(``cd web && npm run dump:api && npm run gen:api``)."""

from __future__ import annotations

import json
from pathlib import Path

from flowloom.webui.openapi import openapi_document

WEB = Path(__file__).resolve().parents[2] / "web"


def test_the_committed_openapi_document_is_the_servers() -> None:
    committed = json.loads((WEB / "openapi.json").read_text(encoding="utf-8"))
    current = json.loads(openapi_document())
    assert sorted(committed["paths"]) == sorted(current["paths"])
    assert committed == current, "regenerate: cd web && npm run dump:api && npm run gen:api"
