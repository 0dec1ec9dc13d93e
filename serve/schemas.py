"""Typed request/response models: the documented contract of every route.

The models drive the OpenAPI document (``/docs``, ``/openapi.json``) and the property
tests; the hot routes parse bodies with orjson + NumPy and answer bytes, because
pydantic per row costs more than the inference itself. Request bodies that are parsed by
hand are declared through :class:`OpenApiExtras`, which puts their models into
``components/schemas``.

:func:`feature_row_model` builds the per-row model from the served model's own schema
(bounds, units, 0/1 flags), so the docs always describe the model actually loaded.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, create_model

from .modelfile import ModelSchema

__all__ = [
    "ErrorBody",
    "InferInputIn",
    "InferOutputOut",
    "InferOutputRequest",
    "InferRequestIn",
    "InferResponseOut",
    "LiveOut",
    "ModelMetadataOut",
    "ModelReadyOut",
    "OpenApiExtras",
    "PredictionOut",
    "ProblemOut",
    "ReadyOut",
    "ServerMetadataOut",
    "TensorMeta",
    "ValidationErrorBody",
    "feature_row_model",
]


class ErrorBody(BaseModel):
    error: str = Field(description="One line naming the tensor/field/line and what is wrong.")


class ProblemOut(BaseModel):
    row: int | None = Field(None, description="0-based row index in the request (JSON input).")
    line: int | None = Field(None, description="File line, header = line 1 (CSV input).")
    field: str | None = Field(description="Feature or column name; null when the whole row is wrong.")
    message: str = Field(description="Why: missing, not a number, out of range, not 0/1, unknown field...")


class ValidationErrorBody(ErrorBody):
    problems: list[ProblemOut] = Field(description="The first problems found (at most 20).")
    problem_count: int = Field(description="How many problems the request has in all.")


class PredictionOut(BaseModel):
    price_range: int = Field(ge=0, description="Predicted class index.")
    label: str = Field(description="Predicted class name.")
    probabilities: dict[str, float] = Field(description="Probability of each class, by class name.")


# --- Open Inference Protocol (KServe v2) ------------------------------------------------

class LiveOut(BaseModel):
    live: bool


class ReadyOut(BaseModel):
    ready: bool


class ModelReadyOut(BaseModel):
    name: str
    ready: bool


class ServerMetadataOut(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMeta(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks a variable dimension.")


class ModelMetadataOut(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMeta]
    outputs: list[TensorMeta]


class InferInputIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(description='Must be the model input, "features".')
    shape: list[int] = Field(description="[N, 20].")
    datatype: Literal["FP32"]
    parameters: dict[str, Any] | None = Field(
        None, description='{"binary_data_size": bytes} when the data follows the JSON header in binary.')
    data: list[Any] | None = Field(None, description="Row-major values, flat or nested.")


class InferOutputRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: Literal["probabilities", "label"]
    parameters: dict[str, Any] | None = Field(None, description='{"binary_data": true} for binary data.')


class InferRequestIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = Field(None, description="Echoed in the response.")
    parameters: dict[str, Any] | None = Field(None, description='{"binary_data_output": true} for binary.')
    inputs: list[InferInputIn] = Field(min_length=1, max_length=1)
    outputs: list[InferOutputRequest] | None = Field(None, description="Default: all outputs.")


class InferOutputOut(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class InferResponseOut(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[InferOutputOut]


# --- named-feature rows -----------------------------------------------------------------

def feature_row_model(schema: ModelSchema) -> type[BaseModel]:
    """A pydantic model of one row of named features, bounded by the served model's schema."""
    fields: dict[str, Any] = {}
    for f in schema.features:
        desc = f"{f.description} ({f.unit})" if f.unit else f.description
        desc += f"; seen in training: {f.observed_min:g} to {f.observed_max:g}"
        if f.kind == "flag":
            fields[f.name] = (Literal[0, 1], Field(description=desc + "; 0 or 1"))
        elif f.kind == "int":
            fields[f.name] = (int, Field(ge=int(f.valid_min), le=int(f.valid_max), description=desc))
        else:
            fields[f.name] = (float, Field(ge=f.valid_min, le=f.valid_max, description=desc))
    fields[schema.target] = (int | None, Field(None, description="Ignored if present (the true class)."))
    return create_model("PhoneFeatures", __config__=ConfigDict(extra="forbid"), **fields)


class OpenApiExtras:
    """Per-app registry of request bodies parsed by hand, merged into ``app.openapi()``."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict] = {}

    def ref(self, model: type[BaseModel]) -> dict:
        """Put ``model`` (and its sub-models) into ``components/schemas``; a ``$ref`` to it."""
        doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
        self.schemas.update(doc.pop("$defs", {}))
        self.schemas[model.__name__] = doc
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def body(self, schema: dict | type[BaseModel], *, media_types: tuple[str, ...] = ("application/json",),
             description: str = "") -> dict:
        """``openapi_extra`` declaring a required request body of ``schema`` (a model or a dict)."""
        if isinstance(schema, type):
            schema = self.ref(schema)
        content = {m: {"schema": schema} for m in media_types}
        return {"requestBody": {"required": True, "content": content, "description": description}}

    def install(self, app: FastAPI) -> None:
        """Make ``app.openapi()`` include the registered schemas."""

        def openapi() -> dict:
            if app.openapi_schema is None:
                doc = get_openapi(title=app.title, version=app.version, description=app.description,
                                  routes=app.routes)
                components = doc.setdefault("components", {}).setdefault("schemas", {})
                for name, schema in self.schemas.items():
                    components.setdefault(name, schema)
                app.openapi_schema = doc
            return app.openapi_schema

        app.openapi = openapi
