"""Starting the server loads no library that only some requests or nodes need.

Each of these costs tens to hundreds of milliseconds of start-up and megabytes of memory; they
are imported when first used (``flowloom.heavy_imports``), or by the warm-up a second after
start-up. A new top-level import of one of them fails here.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import io
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

from flowloom.example_workflows import example_dir
from flowloom.nodes.warm import HEAVY_MODULES

LOADED_WHEN_USED = (
    "PIL",  # image nodes
    "alembic",  # migrating a database that has tables (flowloom.storage.revision does the rest)
    "anthropic",  # LLM providers
    "asyncpg",  # PostgreSQL only
    "celery",  # the distributed executor
    "croniter",  # schedule triggers, once one is checked or due
    "cryptography",  # the credential vault, PyJWT's X.509 support
    "google.genai",
    "httpx",  # nodes that fetch, providers
    "jinja2",  # templates, once a workflow is validated or run
    "jmespath",
    "jwt",  # sign-in with an external identity provider
    "kombu",
    "mako",  # alembic's templates
    "mcp",
    "openai",
    "re2",
    "pygments",
    "redis",
    "rich",  # the CLI's console, for every command but serve
    "sqlalchemy.dialects.postgresql",  # PostgreSQL only (JSONB, partial index conditions, upserts)
    "svix",  # identity-provider webhooks
)

NOT_WARMED = tuple(
    m for m in LOADED_WHEN_USED if m not in {heavy.split(".")[0] for heavy in HEAVY_MODULES}
)
"""What the warm-up never imports (it may have begun by the time a started app is looked at;
and the first start's example workflows are checked with jinja2)."""


def _imported_by(code: str, data_dir: Path) -> list[str]:
    env = {**os.environ, "FLOWLOOM_DATA_DIR": str(data_dir)}
    env.pop("FLOWLOOM_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_building_the_app_imports_none_of_the_libraries_loaded_when_used(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "import flowloom.cli.main, flowloom.cli.serve, uvicorn\n"
        "from flowloom.api import create_app\n"
        "from flowloom.settings import Settings\n"
        "create_app(Settings())\n"
        f"print(json.dumps([m for m in {LOADED_WHEN_USED!r} if m in sys.modules]))\n"
    )
    assert _imported_by(code, tmp_path / "data") == []


def test_a_first_start_imports_none_of_the_libraries_loaded_when_used(tmp_path: Path) -> None:
    """Migrating a new database, the local account, the examples, and the app's start-up (the
    engine, the credential vault, the schedules) included."""
    code = (
        "import asyncio, json, sys\n"
        "from flowloom.cli.entry import skip_unused_modules\n"
        "skip_unused_modules()  # as the flowloom command does\n"
        "from flowloom.api import create_app\n"
        "from flowloom.cli.serve import prepare\n"
        "from flowloom.settings import Settings\n"
        "settings = Settings()\n"
        "asyncio.run(prepare(settings))\n"
        "app = create_app(settings)\n"
        "async def start():\n"
        "    async with app.router.lifespan_context(app):\n"
        f"        print(json.dumps([m for m in {NOT_WARMED!r} if m in sys.modules]))\n"
        "asyncio.run(start())\n"
    )

    assert _imported_by(code, tmp_path / "data") == []


def test_a_restart_validates_no_example_again(tmp_path: Path) -> None:
    """The examples are validated (with Jinja2, for their templates) only when they are added:
    a second start finds them all and loads no Jinja2."""
    code = (
        "import asyncio, json, sys\n"
        "from flowloom.cli.serve import prepare\n"
        "from flowloom.settings import Settings\n"
        "first = asyncio.run(prepare(Settings()))\n"
        "jinja2 = ['jinja2'] if 'jinja2' in sys.modules else []\n"
        "print(json.dumps([str(first.examples_added), *jinja2]))\n"
    )
    data_dir = tmp_path / "data"
    shipped = len(list(example_dir().glob("*.json")))

    assert _imported_by(code, data_dir) == [str(shipped), "jinja2"]
    assert _imported_by(code, data_dir) == ["0"]


def test_the_commands_warm_up_loads_no_console_library(tmp_path: Path) -> None:
    """httpx/__init__ imports httpx's own command line if it can, and with it rich and pygments;
    the flowloom command marks that module missing, so its warm-up loads neither."""
    code = (
        "import json, sys\n"
        "from flowloom.cli.entry import skip_unused_modules\n"
        "skip_unused_modules()\n"
        "from flowloom.nodes.warm import warm_up\n"
        "warm_up()\n"
        "import httpx\n"
        "assert httpx.Client is not None\n"
        "loaded = [m for m in ('httpx._main', 'pygments', 'rich') if sys.modules.get(m)]\n"
        "print(json.dumps(loaded))\n"
    )

    assert _imported_by(code, tmp_path / "data") == []


def test_the_warm_up_leaves_pillow_to_the_first_image_on_a_worker_thread(tmp_path: Path) -> None:
    """Pillow stays out of an idle server (some 4 MiB resident): only the image nodes and the
    blob upload use it, on worker threads, so its first import never holds the event loop."""
    from PIL import Image

    image = io.BytesIO()
    Image.new("RGB", (3, 2)).save(image, format="PNG")
    code = (
        "import base64, json, sys\n"
        "from flowloom.nodes.warm import warm_up\n"
        "warm_up()\n"
        "before = 'PIL' in sys.modules\n"
        "from flowloom.nodes.images import describe_image\n"
        f"data = base64.b64decode({base64.b64encode(image.getvalue())!r})\n"
        "print(json.dumps([before, describe_image(data), 'PIL.Image' in sys.modules]))\n"
    )

    assert _imported_by(code, tmp_path / "data") == [False, ["image/png", 3, 2], True]


def test_the_commands_uvicorn_loads_no_file_watcher(tmp_path: Path) -> None:
    """``import uvicorn`` loads watchfiles for ``--reload`` when it can; ``flowloom serve`` never
    reloads, and the flowloom command marks it missing."""
    code = (
        "import json, sys\n"
        "from flowloom.cli.entry import skip_unused_modules\n"
        "skip_unused_modules()\n"
        "import flowloom.cli.serve, uvicorn, uvicorn.config, uvicorn.server\n"
        "assert uvicorn.Server is not None\n"
        "print(json.dumps([m for m in ('watchfiles',) if sys.modules.get(m)]))\n"
    )

    assert _imported_by(code, tmp_path / "data") == []


def test_building_the_app_reads_no_model_source(tmp_path: Path) -> None:
    """pydantic's ``use_attribute_docstrings`` reads a model's source as its class is made (some
    55 ms over the node configs and schemas); ``flowloom.field_docs`` reads it when a JSON Schema
    is made instead."""
    code = (
        "import json\n"
        "from pydantic import BaseModel\n"
        "from flowloom.api import create_app\n"
        "from flowloom.settings import Settings\n"
        "create_app(Settings())\n"
        "models, reading = [BaseModel], []\n"
        "while models:\n"
        "    for sub in models.pop().__subclasses__():\n"
        "        models.append(sub)\n"
        "        if sub.model_config.get('use_attribute_docstrings'):\n"
        "            reading.append(f'{sub.__module__}.{sub.__qualname__}')\n"
        "print(json.dumps(sorted(set(reading))))\n"
    )

    assert _imported_by(code, tmp_path / "data") == []


def test_the_commands_app_is_built_without_pydantic_v1(tmp_path: Path) -> None:
    """FastAPI imports ``pydantic.v1`` only to check that no route uses a model of it; the
    flowloom command marks it missing, and the routes and the OpenAPI document are built all
    the same."""
    code = (
        "import json, sys\n"
        "from flowloom.cli.entry import skip_unused_modules\n"
        "skip_unused_modules()\n"
        "from flowloom.api import create_app\n"
        "from flowloom.settings import Settings\n"
        "app = create_app(Settings())\n"
        "paths = len(app.openapi()['paths'])\n"
        "print(json.dumps([paths > 50, sys.modules.get('pydantic.v1') is None]))\n"
    )

    assert _imported_by(code, tmp_path / "data") == [True, True]


def test_the_routes_and_their_dependencies_need_no_annotation_evaluating() -> None:
    """FastAPI reads the signature of every route and of each dependency for every route that
    uses it, and evaluates string annotations each time (twice for a route): the route modules
    and ``flowloom.api.deps`` keep their annotations objects (they have no ``from __future__
    import annotations``)."""
    from flowloom.api import deps, routes
    from flowloom.storage.enums import ApiScope

    modules = [deps] + [
        importlib.import_module(f"{routes.__name__}.{found.name}")
        for found in pkgutil.iter_modules(routes.__path__)
    ]
    functions = [
        value
        for module in modules
        for value in vars(module).values()
        if inspect.isfunction(value) and value.__module__ == module.__name__
    ]
    functions.append(deps.require_scope(ApiScope.ADMIN))
    strings = [
        f"{function.__module__}.{function.__qualname__}: {name}"
        for function in functions
        for name, annotation in inspect.get_annotations(function).items()
        if isinstance(annotation, str)
    ]

    assert len(modules) > 20
    assert len(functions) > 150
    assert strings == []


def _openapi_document(tmp_path: Path, *, first: str) -> dict[str, object]:
    code = (
        "import json, sys\n"
        f"{first}\n"
        "from pydantic._internal._config import config_defaults\n"
        "from fastapi.openapi.models import OpenAPI\n"
        "built_at_import = OpenAPI.__pydantic_complete__\n"
        "from flowloom.api import create_app\n"
        "from flowloom.settings import Settings\n"
        "document = create_app(Settings()).openapi()\n"
        "print(json.dumps({'built_at_import': built_at_import, 'document': document,\n"
        "                  'defer_build_default': config_defaults['defer_build']}))\n"
    )
    env = {**os.environ, "FLOWLOOM_DATA_DIR": str(tmp_path / "data")}
    env.pop("FLOWLOOM_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_serve_imports_fastapi_with_its_models_left_to_the_openapi_document(
    tmp_path: Path,
) -> None:
    """``import_fastapi`` (what ``serve`` imports FastAPI with) leaves the models of FastAPI's
    OpenAPI document to be built by the first document, puts pydantic's default back, and the
    document is the same as with FastAPI imported as it is."""
    plain = _openapi_document(tmp_path, first="import fastapi")
    deferred = _openapi_document(
        tmp_path, first="from flowloom.cli.serve import import_fastapi\nimport_fastapi()"
    )

    assert plain["built_at_import"] is True
    assert deferred["built_at_import"] is False
    assert deferred["defer_build_default"] is False
    assert deferred["document"] == plain["document"]
