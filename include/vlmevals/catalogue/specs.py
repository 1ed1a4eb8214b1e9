"""Catalogue rows as the VLMEvalKit adapter's specs: the one place that knows which columns make a spec."""

from __future__ import annotations

from vlmevals.db.models import Model, Task
from vlmevals.toolkit.command import ModelSpec, TaskSpec


def task_spec(task: Task) -> TaskSpec:
    return TaskSpec(task.vlmeval_data, task.vlmeval_dataset_class)


def model_spec(model: Model) -> ModelSpec:
    return ModelSpec(
        model.vlmeval_model,
        model.model_spec,
        model.endpoint_base_url,
        model.endpoint_key_env,
        model.gpus,
        model.launch_mode,
        model.revision,
        model.api_nproc,
    )
