"""GPU pool slots per model. Kept free of heavy imports: the DAG file reads it at parse time."""

from __future__ import annotations

GPU_POOL = "gpu"
GPU_QUEUE = "gpu"
GPU_SLOT_BUCKETS = (1, 2, 4, 8)


def slots_for(gpus: int) -> int:
    """Pool slots an inference holds: the model's GPUs rounded up to a bucket (API models hold one).

    Airflow fixes pool_slots per task at parse time, so the DAG has one inference task per bucket and a
    branch picks it; a 3-GPU model holds 4 slots.
    """
    need = max(1, gpus)
    for b in GPU_SLOT_BUCKETS:
        if need <= b:
            return b
    raise ValueError(
        f"it needs {gpus} GPUs, more than eval_run's largest inference task holds ({GPU_SLOT_BUCKETS[-1]} slots of "
        f"the pool `{GPU_POOL}`); lower the model's gpus to {GPU_SLOT_BUCKETS[-1]} or fewer"
    )


def inference_task_id(slots: int) -> str:
    return "inference" if slots == 1 else f"inference_{slots}gpu"


def serve_task_id(slots: int) -> str:
    """The `model_server` task holding `slots` pool slots for its engine."""
    return "serve" if slots == 1 else f"serve_{slots}gpu"
