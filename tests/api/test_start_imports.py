"""Starting the server loads no library that only some requests or nodes need.

Each of these costs tens to hundreds of milliseconds of start-up and megabytes of memory; they
are imported when first used (``flowloom.heavy_imports``), or by the warm-up a second after
start-up. A new top-level import of one of them fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LOADED_WHEN_USED = (
    "PIL",  # image nodes
    "anthropic",  # LLM providers
    "asyncpg",  # PostgreSQL only
    "celery",  # the distributed executor
    "cryptography",  # the credential vault, PyJWT's X.509 support
    "google.genai",
    "httpx",  # nodes that fetch, providers
    "jinja2",  # templates, once a workflow is validated or run
    "jmespath",
    "jwt",  # sign-in with an external identity provider
    "kombu",
    "mcp",
    "openai",
    "re2",
    "redis",
    "svix",  # identity-provider webhooks
)


def test_building_the_app_imports_none_of_the_libraries_loaded_when_used(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "import flowloom.cli.main, flowloom.cli.serve, uvicorn\n"
        "from flowloom.api import create_app\n"
        "from flowloom.settings import Settings\n"
        "create_app(Settings())\n"
        f"print(json.dumps([m for m in {LOADED_WHEN_USED!r} if m in sys.modules]))\n"
    )
    env = {**os.environ, "FLOWLOOM_DATA_DIR": str(tmp_path / "data")}
    env.pop("FLOWLOOM_DATABASE_URL", None)

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )

    assert json.loads(result.stdout) == []
