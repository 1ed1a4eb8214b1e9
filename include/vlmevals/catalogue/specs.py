"""Catalogue rows as the VLMEvalKit adapter's specs: the one place that knows which columns make a spec."""

from __future__ import annotations

from vlmevals.core.errors import InvalidRequestError
from vlmevals.db.models import Checkpoint, Model, Task
from vlmevals.vlmevalkit.command import ModelSpec, TaskSpec


def task_spec(task: Task) -> TaskSpec:
    return TaskSpec(task.vlmeval_data, task.vlmeval_dataset_class)


def model_spec(model: Model, checkpoint: Checkpoint | None = None) -> ModelSpec:
    """The model as registered, or at `checkpoint` (its weights path or Hub revision in place of the model's)."""
    spec = ModelSpec(
        model.vlmeval_model,
        model.model_spec,
        model.endpoint_base_url,
        model.endpoint_key_env,
        model.gpus,
        model.launch_mode,
        model.revision,
        model.api_nproc,
    )
    if checkpoint is None:
        return spec
    try:
        return spec.with_weights(weights_path=checkpoint.weights_path, hub_revision=checkpoint.hub_revision)
    except ValueError as err:
        raise InvalidRequestError(f"checkpoint {checkpoint.id} of model {model.name!r}: {err}") from err


def checkpoint_identity(checkpoint: Checkpoint | None) -> dict[str, object] | None:
    """What a run's fingerprint records of its checkpoint: it changes the result, its database id does not."""
    if checkpoint is None:
        return None
    return {
        "step": checkpoint.step,
        "label": checkpoint.label,
        "weights_path": checkpoint.weights_path,
        "hub_revision": checkpoint.hub_revision,
    }
