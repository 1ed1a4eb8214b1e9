"""A model's `serve` spec: the service runs the model's weights in an inference engine and evaluates against it
(vlmevals.serving). Validated here, where a model comes in (API, seed file), so a bad spec fails at registration."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from vlmevals.catalogue.fields import LINE_PATTERN, JsonInt
from vlmevals.serving.engines import ENGINES, reserved_in

DEFAULT_STARTUP_TIMEOUT_S = 1800.0  # a large checkpoint from a cold disk, plus CUDA graph capture, takes minutes
DEFAULT_IDLE_TIMEOUT_S = 600.0


def _known_engine(v: Any) -> Any:
    if v not in ENGINES:
        raise ValueError(f"unknown engine {v!r}; give one of {', '.join(ENGINES)}")
    return v


EngineName = Annotated[
    str,
    Field(json_schema_extra={"enum": list(ENGINES)}, description="the inference engine: " + ", ".join(ENGINES)),
    BeforeValidator(_known_engine),
]
EngineArg = Annotated[str, Field(min_length=1, max_length=1024, pattern=LINE_PATTERN)]


class ServeSpec(BaseModel):
    """How the service serves a model: the engine, its own arguments, the GPUs it holds and its time limits."""

    model_config = ConfigDict(extra="forbid")

    engine: EngineName
    args: list[EngineArg] = Field(
        default_factory=list,
        max_length=64,
        description="the engine's own command-line arguments, one list item per word, e.g. "
        '["--max-model-len", "8192"]; not the weights, host, port, served name or tensor parallelism (the '
        "service sets those)",
    )
    gpus: JsonInt | None = Field(
        default=None,
        ge=1,
        le=64,
        description="GPUs the server holds (its tensor parallelism); default: the model's gpus",
    )
    startup_timeout_s: float = Field(
        default=DEFAULT_STARTUP_TIMEOUT_S, gt=0, le=6 * 3600, description="seconds the engine may take to answer"
    )
    idle_timeout_s: float = Field(
        default=DEFAULT_IDLE_TIMEOUT_S,
        gt=0,
        le=7 * 86400,
        description="the server stops after this many seconds without a queued or running eval run needing it",
    )

    @model_validator(mode="after")
    def _args_leave_service_flags(self) -> ServeSpec:
        clash = reserved_in(self.engine, self.args)
        if clash:
            raise ValueError(
                f"serve.args: {', '.join(clash)} is set by the service for engine {self.engine} (weights, host, "
                "port, served name, tensor parallelism = serve.gpus); leave it out"
            )
        return self


def check_served_model(
    serve: ServeSpec | None, model_spec: dict[str, Any] | None, endpoint: str | None, gpus: int
) -> ServeSpec | None:
    """A served model needs weights the service can load (`model_spec.model_path`) and no endpoint of its own;
    returns the spec with its GPUs resolved (the model's unless given)."""
    if serve is None:
        return None
    if endpoint is not None:
        raise ValueError(
            "give serve (the service starts the engine and chooses its endpoint) or endpoint_base_url (a server "
            "you run), not both"
        )
    path = (model_spec or {}).get("model_path")
    if not isinstance(path, str) or not path:
        raise ValueError(
            "serve needs the weights: give model_spec with model_path (a local folder or a Hub repo id), e.g. "
            '{"class": "DOCLING", "model_path": "/models/my-vlm"}'
        )
    if serve.gpus is None:
        if gpus < 1:
            raise ValueError("serve.gpus: the model has gpus 0; give serve.gpus (1 or more) or the model's gpus")
        return serve.model_copy(update={"gpus": gpus})
    return serve
