"""Everything an evaluation needs before it may take a GPU slot: a judge when the dataset needs one, the
dataset TSV present and verified (downloaded if need be), the Hub weights in the local cache.

Called by the `queue` step; each failure is a readable error that fails the run before any GPU is held.
Progress of a download goes to the task log and to the run's progress (KiB done / total), the time spent to
the run's events (through the run life cycle, each write its own short transaction: a download takes minutes).
"""

from __future__ import annotations

import logging
import os
import time

from sqlalchemy import Engine

from vlmevals.catalogue.specs import model_spec
from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import Settings
from vlmevals.db.engine import session_scope
from vlmevals.runs import lifecycle as runs
from vlmevals.vlmevalkit import hub, registry
from vlmevals.vlmevalkit.datasets import DatasetInfo
from vlmevals.vlmevalkit.download import Fetched, offline, prepare_dataset
from vlmevals.vlmevalkit.hub import HubWeights

log = logging.getLogger(__name__)


def _event(engine: Engine, run_id: int, message: str) -> None:
    log.info("eval run %s: %s", run_id, message)
    with session_scope(engine) as s:
        runs.record_preparation(s, run_id, message)


def judge_configured(judge: str | None, settings: Settings) -> bool:
    """An LLM judge can be reached: a judge model other than exact matching, and a server (or OpenAI's key)."""
    name = judge or settings.judge
    return name != "exact_matching" and bool(settings.judge_base_url or os.environ.get("OPENAI_API_KEY"))


def check_judge(engine: Engine, run_id: int, settings: Settings) -> None:
    """Refuse a task scored by an LLM judge when none is configured (recording the task's need once)."""
    with session_scope(engine) as s:
        run = runs.get_run(s, run_id)
        task, judge = run.task, (run.options or {}).get("judge")
        if task.needs_llm_judge is None:
            try:
                entry = registry.load(settings).dataset(task.vlmeval_data)
            except InvalidRequestError:
                entry = None
            task.needs_llm_judge = bool(entry and entry.needs_llm_judge)
            task.default_judge = entry.judge if entry else None
        needs, default, name, data = task.needs_llm_judge, task.default_judge, task.name, task.vlmeval_data
    if needs and not judge_configured(judge, settings):
        raise InvalidRequestError(
            f"task {name!r} (VLMEvalKit dataset {data}) is scored by an LLM judge (VLMEvalKit's default: "
            f"{default or 'an LLM'}) and none is configured: set EVALS_JUDGE_BASE_URL to an OpenAI-compatible "
            "server (…/v1), EVALS_JUDGE_KEY if it needs a key, and EVALS_JUDGE (or the run's judge) to the judge "
            "model's name; exact_matching cannot score this dataset"
        )


def dataset(engine: Engine, run_id: int, settings: Settings) -> DatasetInfo:
    """The run's dataset in LMUData, verified; a download's progress and time recorded on the run."""
    with session_scope(engine) as s:
        task = runs.get_run(s, run_id).task
        data, url, md5 = task.vlmeval_data, task.dataset_url, task.dataset_md5

    def progress(done: int, total: int | None) -> None:
        pct = f" ({100 * done / total:.0f}%)" if total else ""
        log.info("downloading %s: %.1f / %s MB%s", data, done / 1e6, f"{total / 1e6:.1f}" if total else "?", pct)
        with session_scope(engine) as s:
            runs.set_progress(s, run_id, done // 1024, total // 1024 if total else None)

    def fetched(got: Fetched) -> None:
        rate = got.bytes / 1e6 / max(got.seconds, 1e-6)
        _event(
            engine,
            run_id,
            f"dataset {data}: {got.bytes} bytes from {got.url} in {got.seconds:.1f} s ({rate:.1f} MB/s), md5 "
            f"{got.md5} verified",
        )

    return prepare_dataset(data, settings, url=url, md5=md5, on_progress=progress, on_fetched=fetched)


def weights(engine: Engine, run_id: int, settings: Settings) -> HubWeights | None:
    """Download a Hub model's snapshot now, so the inference step loads it offline."""
    with session_scope(engine) as s:
        run = runs.get_run(s, run_id)
        model = model_spec(run.model, run.checkpoint)  # a checkpoint's Hub revision is fetched like the model's
    if offline():  # no network: the snapshot must already be in the HF cache (a clear error if not)
        hub.offline_model(model, settings)
        return None
    t0 = time.monotonic()
    got = hub.prefetch(model, settings)
    if got is not None:
        _event(
            engine,
            run_id,
            f"weights {got.repo}@{got.revision}: commit {got.sha} ready in {time.monotonic() - t0:.1f} s",
        )
    return got


ENDPOINT_PROBE_TRIES = 3
ENDPOINT_PROBE_TIMEOUT_S = 5.0  # per try: connect and read
ENDPOINT_PROBE_PAUSE_S = 1.0  # between tries


def probe_endpoint(
    base_url: str,
    tries: int = ENDPOINT_PROBE_TRIES,
    timeout_s: float = ENDPOINT_PROBE_TIMEOUT_S,
    pause_s: float = ENDPOINT_PROBE_PAUSE_S,
) -> None:
    """Fail naming the URL when a served model's server cannot be reached (any HTTP answer counts as up).

    Why here: VLMEvalKit's API wrappers do not stop on a refused connection; they retry each sample and then
    record "Failed to obtain answer" as its prediction, so a down server would be "scored" (every sample wrong)
    minutes later. A GET of `{base_url}/models`, a few tries with a short timeout, refuses it before a GPU slot.
    """
    import httpx

    url = f"{base_url.rstrip('/')}/models"
    last: Exception | None = None
    for attempt in range(tries):
        try:
            httpx.get(url, timeout=timeout_s)
            return
        except httpx.TransportError as err:  # refused, reset, DNS, timeout: the server is not there
            last = err
            if attempt + 1 < tries:
                time.sleep(pause_s)
    raise InvalidRequestError(
        f"the model's endpoint {base_url} is unreachable: GET {url} failed {tries} times ({type(last).__name__}: "
        f"{last}); start the server or fix the model's endpoint_base_url, then trigger the run again"
    )


def endpoint(engine: Engine, run_id: int) -> None:
    with session_scope(engine) as s:
        base_url = runs.get_run(s, run_id).model.endpoint_base_url
    if base_url:  # the module's settings, read now (tests shorten them)
        probe_endpoint(base_url, ENDPOINT_PROBE_TRIES, ENDPOINT_PROBE_TIMEOUT_S, ENDPOINT_PROBE_PAUSE_S)


def prepare_inputs(engine: Engine, run_id: int, settings: Settings) -> DatasetInfo:
    """Judge, dataset, served model's endpoint, weights: in that order, cheapest refusal first."""
    check_judge(engine, run_id, settings)
    info = dataset(engine, run_id, settings)
    endpoint(engine, run_id)
    weights(engine, run_id, settings)
    return info
