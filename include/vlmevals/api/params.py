"""Query parameters that only make sense together (either/or, at least one of), declared once as a pydantic
model: the model validates the query (the same 422 as any other invalid input) and its JSON schema becomes one
exploded `form` object parameter in the OpenAPI document, so the document states the rule the API enforces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query value is a string or absent, never JSON null: drop the `null` branch of optional fields."""
    out = dict(schema)
    props = {}
    for name, prop in schema.get("properties", {}).items():
        branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
        rest = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
        props[name] = {**branches[0], **rest} if len(branches) == 1 else rest if branches == [] else prop
    out["properties"] = props
    return out


def query_object(model: type[M], name: str, description: str) -> tuple[Callable[[Request], M], dict[str, Any]]:
    """A dependency parsing the query string into `model`, and the route's `openapi_extra` documenting it."""

    def parse(request: Request) -> M:
        try:
            return model.model_validate(dict(request.query_params))
        except ValidationError as err:
            errors = err.errors(include_url=False, include_context=False)
            raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in errors]) from None

    schema = _not_null(model.model_json_schema())
    param = {
        "name": name,
        "in": "query",
        "style": "form",
        "explode": True,
        "required": True,
        "description": description,
        "schema": schema,
    }
    return parse, {"parameters": [param]}
