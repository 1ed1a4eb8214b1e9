"""Checkpoints of a model: registered with their step (or label) and their weights (a local path or a Hub
revision), after every check that can refuse them: the weights are found, the step or label is free, and
there is a suite to evaluate them on. The row is only flushed here; the caller's transaction also holds the
checkpoint's runs, so a refusal anywhere leaves nothing behind.
"""

from __future__ import annotations

import os

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vlmevals.catalogue.schemas.checkpoints import CheckpointCreate, CheckpointPublic
from vlmevals.catalogue.specs import model_spec
from vlmevals.catalogue.store import get_model
from vlmevals.catalogue.suites import get_suite
from vlmevals.core.errors import ConflictError, InvalidRequestError
from vlmevals.core.settings import Settings, get_settings
from vlmevals.db.models import Checkpoint, Model, Suite
from vlmevals.vlmevalkit import hub

# the order checkpoints follow (lists, charts, "the previous checkpoint"): by step, label-only ones after, by time
CHECKPOINT_ORDER = (Checkpoint.step.asc().nulls_last(), Checkpoint.created_at.asc(), Checkpoint.id.asc())


def describe(cp: Checkpoint | CheckpointCreate) -> str:
    parts = ([f"step {cp.step}"] if cp.step is not None else []) + ([f"label {cp.label!r}"] if cp.label else [])
    return " / ".join(parts)


def checkpoint_suite(session: Session, model: Model, suite: str | None) -> Suite:
    """The suite a new checkpoint is evaluated on: the one asked for, else the model's."""
    if suite is not None:
        return get_suite(session, suite)
    if model.suite is None:
        raise InvalidRequestError(
            f"suite: model {model.name!r} has no suite to evaluate checkpoints on; give 'suite' in the body "
            f'(e.g. "suite": "demo") or set the model\'s suite (PATCH /api/evals/models/{model.name} with '
            '{"suite": "demo"}, or `suite:` in the seed file)'
        )
    return get_suite(session, model.suite.name)


def _duplicate(session: Session, model: Model, body: CheckpointCreate) -> ConflictError | None:
    same = []
    if body.step is not None:
        same.append(Checkpoint.step == body.step)
    if body.label is not None:
        same.append(Checkpoint.label == body.label)
    found = session.scalar(select(Checkpoint).where(Checkpoint.model_id == model.id, or_(*same)).limit(1))
    if found is None:
        return None
    return ConflictError(
        f"model {model.name!r} already has checkpoint {found.id} ({describe(found)}); give a new step or label "
        f"(GET /api/evals/models/{model.name}/checkpoints lists them)",
        existing_id=found.id,
        existing="checkpoint",
    )


def check_weights_path(model: Model, path: str) -> None:
    if model.model_spec is None:
        raise InvalidRequestError(
            f"weights_path: model {model.name!r} runs by VLMEvalKit registry name or endpoint, so its weights "
            "cannot be replaced; register a model with a model_spec (class + model_path) for its checkpoints"
        )
    if not os.path.isabs(path) or not os.path.exists(path):
        raise InvalidRequestError(
            f"weights_path: {path!r} does not exist on this machine (an absolute path is needed); save the "
            "checkpoint there first, or give the folder where it is (shared with the workers)"
        )


def check_hub_revision(model: Model, revision: str, settings: Settings) -> None:
    base = model_spec(model)
    weights = hub.hub_weights(base.with_weights(hub_revision=revision), settings) if model.model_spec else None
    if weights is None:
        raise InvalidRequestError(
            f"hub_revision: model {model.name!r} does not load its weights from a Hub repo (its model_spec's "
            "model_path is not a repo id); give weights_path instead"
        )
    if hub.online_sha(weights.repo, revision) is None:
        raise InvalidRequestError(
            f"hub_revision: {revision!r} does not resolve on {weights.repo} at {hub.endpoint()}; give a branch, "
            "tag or commit that exists there (check HF_ENDPOINT and HF_TOKEN for private repos)"
        )


def register(
    session: Session, model_name: str, body: CheckpointCreate, *, user: str | None, settings: Settings | None = None
) -> tuple[Checkpoint, Suite]:
    """A new checkpoint (flushed, not committed) and the suite to evaluate it on; 404/409/422 on bad input."""
    model = get_model(session, model_name)
    suite = checkpoint_suite(session, model, body.suite)
    dup = _duplicate(session, model, body)
    if dup is not None:
        raise dup
    if body.weights_path is not None:
        check_weights_path(model, body.weights_path)
    else:
        check_hub_revision(model, str(body.hub_revision), settings or get_settings())
    cp = Checkpoint(
        model_id=model.id,
        model=model,
        step=body.step,
        label=body.label,
        weights_path=body.weights_path,
        hub_revision=body.hub_revision,
        created_by=user,
        mlflow_run_id=body.mlflow_run_id,
        tensorboard_dir=body.tensorboard_dir,
        wandb_run_path=body.wandb_run_path,
    )
    try:
        with session.begin_nested():
            session.add(cp)
            session.flush()
    except IntegrityError as err:  # lost a race with a concurrent registration of the same step or label
        raise _duplicate(session, model, body) or ConflictError(f"checkpoint {describe(body)} exists") from err
    session.refresh(cp)
    return cp, suite


def list_checkpoints(session: Session, model_name: str, limit: int, offset: int) -> tuple[list[Checkpoint], int]:
    model = get_model(session, model_name)
    mine = Checkpoint.model_id == model.id
    count = session.scalar(select(func.count()).select_from(Checkpoint).where(mine)) or 0
    rows = session.scalars(select(Checkpoint).where(mine).order_by(*CHECKPOINT_ORDER).limit(limit).offset(offset)).all()
    return list(rows), count


def to_public(cp: Checkpoint) -> CheckpointPublic:
    return CheckpointPublic(
        id=cp.id,
        model=cp.model.name,
        step=cp.step,
        label=cp.label,
        weights_path=cp.weights_path,
        hub_revision=cp.hub_revision,
        created_at=cp.created_at,
        created_by=cp.created_by,
        mlflow_run_id=cp.mlflow_run_id,
        tensorboard_dir=cp.tensorboard_dir,
        wandb_run_path=cp.wandb_run_path,
    )
