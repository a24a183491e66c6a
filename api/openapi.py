"""OpenAPI: document the bodies of ``POST /searches``, ``/supernets`` and ``/trainings`` as the SearchSpec,
SupernetSpec and TrainingSpec schemas.

The route takes the body as plain JSON and validates it itself (``validate_submission``), so that
every spec error, whether from the schema or from the checks beyond it, is one 422 naming the field
with the library's own message. FastAPI therefore cannot infer the body schema; it is added here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from nas.search import SearchSpec
from nas.supernet import SupernetSpec
from nas.training import TrainingSpec


def _body(model: str) -> dict[str, Any]:
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}}}}


SEARCH_SPEC_BODY: dict[str, Any] = _body("SearchSpec")
SUPERNET_SPEC_BODY: dict[str, Any] = _body("SupernetSpec")
TRAINING_SPEC_BODY: dict[str, Any] = _body("TrainingSpec")


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes, tags=app.openapi_tags)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (SearchSpec, SupernetSpec, TrainingSpec):
                spec = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in spec.pop("$defs", {}).items():
                    components.setdefault(name, definition)
                components[model.__name__] = spec
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
