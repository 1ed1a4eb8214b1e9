"""Names shared by the DAG files, the plugin, the API and the domain code: defined once, imported everywhere.

Kept free of imports so that DAG files can read it at parse time.
"""

from __future__ import annotations

EVAL_RUN_DAG_ID = "eval_run"
SCORING_TASK_ID = "scoring"  # the eval_run task that scores; a re-judge's `queue` branches straight to it
SERVED_INFERENCE_TASK_ID = "inference_served"  # eval_run's inference of a served model (vlmevals.pipeline.serve)
MODEL_SERVER_DAG_ID = "model_server"  # one DAG run per managed model server (vlmevals.serving)
NIGHTLY_DAG_ID = "nightly_evals"
SYNC_OUTPUTS_DAG_ID = "sync_outputs"
DELIVER_EXPORTS_DAG_ID = "deliver_exports"

API_PREFIX = "/api/evals"
"""Where the plugin mounts the evals API inside Airflow's api-server (below Airflow's own base path)."""

# served models: the most concurrent requests one run may send (VLMEvalKit --api-nproc)
API_NPROC_MAX = 256

# VLMEvalKit's stdout/stderr in a run's artifacts folder (written by vlmevalkit.runner; linked by the API only
# when present: a backfilled run has none)
WORKER_STDOUT_LOG = "worker_stdout.log"
WORKER_STDERR_LOG = "worker_stderr.log"

CHECKPOINT_DAG_ID = "eval_checkpoint"
CHECKPOINT_ASSET_NAME = "model_checkpoints"
CHECKPOINT_ASSET_URI = "vlmevals://checkpoints"
"""The Airflow Asset whose events register checkpoints (extra: model, step | label, weights_path | hub_revision,
suite?); `eval_checkpoint` is scheduled on it."""
