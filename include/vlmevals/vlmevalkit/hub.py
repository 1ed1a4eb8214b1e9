"""Model weights from the Hugging Face Hub, fetched before the GPU slot and pinned to a commit.

A model's weights come from the Hub when its spec's `model_path` (or the VLMEvalKit registry entry's default
path) is a repo id. The queue step downloads the snapshot (`HF_ENDPOINT`, `HF_HOME`/`HF_HUB_CACHE` honoured;
a token only from `HF_TOKEN` in the environment, never stored); the resolved commit sha is the weights
identity in the fingerprint; inference runs with the Hub offline on that snapshot, so no GPU waits on a
download. CPU and GPU workers must share the HF cache (like LMUData) when they are different machines.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import Settings
from vlmevals.vlmevalkit import registry
from vlmevals.vlmevalkit.command import ModelSpec, expand_paths

log = logging.getLogger(__name__)
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SHA = re.compile(r"^[0-9a-f]{40}$")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
_online_cache: dict[tuple[str, str, str], tuple[float, str | None]] = {}
ONLINE_TTL_S = 60.0


@dataclass(frozen=True)
class HubWeights:
    repo: str
    revision: str  # what the catalogue asks for (default main)
    sha: str | None = None  # the commit it resolved to
    path: Path | None = None  # the local snapshot
    seconds: float = 0.0

    def identity(self) -> dict[str, Any]:
        return {"hub": self.repo, "revision": self.revision, "sha": self.sha}


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def hub_cache() -> Path:
    """The cache huggingface_hub uses, read from the environment now (its constants froze at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def is_repo_id(path: object) -> bool:
    return isinstance(path, str) and bool(REPO_ID.match(path)) and not os.path.exists(path)


def hub_weights(model: ModelSpec, settings: Settings) -> HubWeights | None:
    """The Hub repo a model loads its weights from, or None (local path, endpoint, API model)."""
    if model.endpoint_base_url:
        return None
    revision = model.revision
    if model.model_spec is not None:
        spec = expand_paths(model.model_spec, settings)
        path = spec.get("model_path") or spec.get("model")
        revision = revision or spec.get("revision")
    else:
        try:
            path = registry.load(settings).model_path(model.vlmeval_model)
        except InvalidRequestError:
            return None
    return HubWeights(path, revision or "main") if is_repo_id(path) else None


def cached_sha(repo: str, revision: str) -> str | None:
    """The commit `revision` resolved to at the last download, from the local cache (no network)."""
    folder = hub_cache() / f"models--{repo.replace('/', '--')}"
    if SHA.match(revision):
        return revision if (folder / "snapshots" / revision).is_dir() else None
    ref = folder / "refs" / revision
    return ref.read_text().strip() if ref.is_file() else None


def online_sha(repo: str, revision: str) -> str | None:
    """The commit `revision` points at on the Hub now (cached a minute; None when the Hub is unreachable)."""
    key = (endpoint(), repo, revision)
    hit = _online_cache.get(key)
    if hit and time.monotonic() - hit[0] < ONLINE_TTL_S:
        return hit[1]
    from huggingface_hub import HfApi

    try:
        sha = HfApi(endpoint=endpoint()).model_info(repo, revision=revision, timeout=15).sha
    except Exception as err:  # offline worker, Hub down: fall back to what was downloaded last
        log.warning("cannot resolve %s@%s on %s (%s); using the cached commit", repo, revision, endpoint(), err)
        sha = cached_sha(repo, revision)
    _online_cache[key] = (time.monotonic(), sha)
    return sha


def identity(model: ModelSpec, settings: Settings, online: bool) -> dict[str, Any] | None:
    """The fingerprint's weights identity of a Hub model: repo, requested revision and resolved commit."""
    w = hub_weights(model, settings)
    if w is None:
        return None
    sha = online_sha(w.repo, w.revision) if online else cached_sha(w.repo, w.revision)
    return replace(w, sha=sha).identity()


def prefetch(model: ModelSpec, settings: Settings) -> HubWeights | None:
    """Download the model's snapshot into the HF cache (a no-op when it is there); None for non-Hub models."""
    w = hub_weights(model, settings)
    if w is None:
        return None
    if model.model_spec is None and w.revision != "main":
        raise InvalidRequestError(
            f"model {model.vlmeval_model!r} pins revision {w.revision!r} but runs by registry name, which "
            "VLMEvalKit loads from the main branch; give it a model_spec with model_path "
            f"{w.repo!r} to pin a revision"
        )
    from huggingface_hub import snapshot_download

    t0 = time.monotonic()
    try:
        path = snapshot_download(w.repo, revision=w.revision, endpoint=endpoint(), cache_dir=hub_cache())
    except Exception as err:
        raise InvalidRequestError(
            f"downloading the weights of {w.repo}@{w.revision} from {endpoint()} failed: {err}. Check the repo "
            "id and revision, HF_ENDPOINT, and HF_TOKEN for gated repos (nothing was started on a GPU)"
        ) from err
    secs = time.monotonic() - t0
    sha = Path(path).name
    log.info("weights %s@%s ready: commit %s in %s (%.1f s)", w.repo, w.revision, sha, path, secs)
    return replace(w, sha=sha, path=Path(path), seconds=secs)


def offline_model(model: ModelSpec, settings: Settings) -> tuple[ModelSpec, dict[str, str]]:
    """The model as inference runs it: a spec model points at its local snapshot, and the Hub is offline."""
    w = hub_weights(model, settings)
    if w is None:
        return model, {}
    sha = cached_sha(w.repo, w.revision)
    snapshot = hub_cache() / f"models--{w.repo.replace('/', '--')}" / "snapshots" / (sha or "-")
    if sha is None or not snapshot.is_dir():
        raise InvalidRequestError(
            f"the weights of {w.repo}@{w.revision} are not in this worker's HF cache ({hub_cache()}); the queue "
            "step downloads them: share HF_HOME between CPU and GPU workers, or rerun the evaluation"
        )
    if model.model_spec is None:
        return model, dict(OFFLINE_ENV)
    key = "model_path" if "model_path" in model.model_spec else "model"
    return replace(model, model_spec={**model.model_spec, key: str(snapshot)}), dict(OFFLINE_ENV)
