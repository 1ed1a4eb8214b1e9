"""Names checked when the catalogue changes: a task's `vlmeval_data` and a model's `vlmeval_model` must be
something VLMEvalKit can run, so a typo is a 422 with the closest registered names, not a failed run later.

Lookups go through vlmevals.vlmevalkit.registry (a cached file per VLMEvalKit version): no `import vlmeval` here.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass

from vlmevals.catalogue.schemas.tasks_models import ModelCreate, TaskCreate
from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import Settings, get_settings
from vlmevals.vlmevalkit import registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskCheck:
    """What the check learnt: whether an LLM judge scores the dataset (None: not known) and VLMEvalKit's default."""

    needs_llm_judge: bool | None
    default_judge: str | None


def closest(name: str, known: list[str], n: int = 5) -> list[str]:
    """Registered names nearest to `name` (case-insensitive first, then difflib)."""
    folded = {k.lower(): k for k in known}
    exact = [folded[name.lower()]] if name.lower() in folded else []
    near = difflib.get_close_matches(name.lower(), list(folded), n=n, cutoff=0.5)
    return list(dict.fromkeys([*exact, *(folded[k] for k in near)]))[:n]


def _unknown(kind: str, field: str, name: str, known: list[str], fix: str) -> InvalidRequestError:
    near = closest(name, known)
    hint = f"; closest registered names: {', '.join(near)}" if near else ""
    return InvalidRequestError(f"{field} {name!r} is not a {kind} VLMEvalKit knows{hint}. {fix}")


def _load(settings: Settings) -> registry.Registry | None:
    try:
        return registry.load(settings)
    except InvalidRequestError:  # VLMEvalKit not importable here: do not block the catalogue on it
        log.warning("VLMEvalKit's registry could not be read; names are not checked", exc_info=True)
        return None


def check_task(body: TaskCreate, settings: Settings | None = None) -> TaskCheck:
    """Accept a registered dataset, a custom TSV present in LMUData, or a task that brings its dataset_url."""
    settings = settings or get_settings()
    reg = _load(settings)
    if reg is None:
        return TaskCheck(None, None)
    entry = reg.dataset(body.vlmeval_data)
    if entry is not None:
        return TaskCheck(entry.needs_llm_judge, entry.judge)
    if body.dataset_url or (settings.lmu_data / f"{body.vlmeval_data}.tsv").exists():
        return TaskCheck(False, None)  # custom dataset: VLMEvalKit scores it as MCQ/VQA without a judge
    raise _unknown(
        "dataset",
        "vlmeval_data",
        body.vlmeval_data,
        sorted(reg.datasets),
        f"Use a registered name, put {body.vlmeval_data}.tsv into LMUData ({settings.lmu_data}), or give "
        "dataset_url and dataset_md5.",
    )


def check_model(body: ModelCreate, settings: Settings | None = None) -> None:
    """A model without a spec or endpoint runs by VLMEvalKit registry name: that name must exist."""
    if body.model_spec is not None or body.endpoint_base_url is not None:
        return
    settings = settings or get_settings()
    reg = _load(settings)
    if reg is None or body.vlmeval_model in reg.models:
        return
    raise _unknown(
        "model",
        "vlmeval_model",
        body.vlmeval_model,
        sorted(reg.models),
        "Use a registered name, or give model_spec (local or Hub weights) or endpoint_base_url (a served model).",
    )
