"""The API's models are built when first used (``ApiModel``), except request bodies, which are
built when their route is declared (``RequestBody``): FastAPI builds a body's adapter under a
guard against a pydantic warning that a deferred build, at the first request, would give."""

from __future__ import annotations

import importlib
import pkgutil
import types
import warnings
from typing import Any, Union, get_args, get_origin

from fastapi.routing import APIRoute
from pydantic import BaseModel

from flowloom.api import routes
from flowloom.api.schemas.common import ApiModel, Page, RequestBody
from flowloom.api.schemas.runs import RunCreate, RunPublic


def _body_models() -> list[type[BaseModel]]:
    found = []
    for module_info in pkgutil.iter_modules(routes.__path__):
        module = importlib.import_module(f"{routes.__name__}.{module_info.name}")
        for route in module.router.routes:
            if not isinstance(route, APIRoute) or route.body_field is None:
                continue
            annotation: Any = route.body_field.field_info.annotation
            members = (
                get_args(annotation)
                if get_origin(annotation) in (Union, types.UnionType)
                else (annotation,)
            )
            found += [
                member
                for member in members
                if isinstance(member, type)
                and issubclass(member, BaseModel)
                and member.__module__.startswith("flowloom.")
            ]
    return found


def test_every_route_body_is_built_when_its_route_is_declared() -> None:
    bodies = _body_models()

    assert len(bodies) > 25
    deferred = [body.__qualname__ for body in bodies if body.model_config.get("defer_build")]
    assert deferred == []
    assert all(body.__pydantic_complete__ for body in bodies)


def test_an_api_model_waits_for_its_first_use_and_then_works_as_declared() -> None:
    class Probe(ApiModel):
        name: str
        count: int = 0

    assert not Probe.__pydantic_complete__
    assert Probe.model_validate({"name": "a", "count": "2"}) == Probe(name="a", count=2)
    assert Probe.__pydantic_complete__
    assert issubclass(RunCreate, RequestBody)
    assert RunPublic.model_config.get("defer_build") is True
    assert Page[RunPublic].model_config.get("defer_build") is True


def test_a_deferred_body_would_warn_at_its_first_request() -> None:
    """Why bodies are not deferred: the adapter FastAPI makes for a body, built late."""
    from fastapi.utils import create_model_field
    from pydantic.warnings import UnsupportedFieldAttributeWarning

    class LateBody(ApiModel):
        name: str

    field = create_model_field(name="body", type_=LateBody, alias="body")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        field.validate({"name": "a"})

    assert [w.category for w in caught] == [UnsupportedFieldAttributeWarning]
