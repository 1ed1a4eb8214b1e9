"""Hub weights against a fake Hub on 127.0.0.1: prefetch resolves the commit, inference gets the local
snapshot with the Hub offline, a pinned revision holds, a new commit changes the fingerprint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import Settings
from vlmevals.results import fingerprint
from vlmevals.vlmevalkit import hub, registry
from vlmevals.vlmevalkit.command import ModelSpec, TaskSpec

from tests.doubles.fake_hub import FakeHub, fake_hub

REPO = "demo-org/tiny-model"
FILES = {"config.json": b'{"model_type": "idefics3"}', "model.safetensors": b"\0" * 300_000}


@pytest.fixture()
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with fake_hub() as h:
        monkeypatch.setenv("HF_ENDPOINT", h.endpoint)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        hub._online_cache.clear()
        yield h


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({"LMUData": tmp_path / "lmu", "VLMEVAL_OUTPUTS": tmp_path / "out"})


def spec_model(revision: str | None = None) -> ModelSpec:
    return ModelSpec("TinyHub", {"class": "DOCLING", "model_path": REPO, "max_new_tokens": 1}, revision=revision)


def test_prefetch_resolves_the_commit_and_inference_runs_offline(fake: FakeHub, settings: Settings) -> None:
    sha = fake.commit(REPO, FILES)
    got = hub.prefetch(spec_model(), settings)
    assert got is not None and got.sha == sha and got.path is not None
    assert (got.path / "model.safetensors").stat().st_size == 300_000
    n = len(fake.state.requests)
    model, env = hub.offline_model(spec_model(), settings)
    assert model.model_spec is not None and model.model_spec["model_path"] == str(got.path)
    assert env == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    assert hub.identity(spec_model(), settings, online=False) == {"hub": REPO, "revision": "main", "sha": sha}
    assert len(fake.state.requests) == n  # neither needed the Hub


def test_inference_refuses_when_the_snapshot_is_not_cached(fake: FakeHub, settings: Settings) -> None:
    fake.commit(REPO, FILES)
    with pytest.raises(InvalidRequestError, match=r"not in this worker's HF cache.*share HF_HOME"):
        hub.offline_model(spec_model(), settings)


def test_pinned_revision_holds_when_main_moves(fake: FakeHub, settings: Settings) -> None:
    old = fake.commit(REPO, FILES)
    fake.commit(REPO, {**FILES, "config.json": b"{}"})
    got = hub.prefetch(spec_model(revision=old), settings)
    assert got is not None and got.sha == old
    model, _ = hub.offline_model(spec_model(revision=old), settings)
    assert model.model_spec is not None and model.model_spec["model_path"].endswith(old)


def test_a_new_commit_changes_the_fingerprint(fake: FakeHub, settings: Settings) -> None:
    first = fake.commit(REPO, FILES)
    hub.prefetch(spec_model(), settings)
    task = TaskSpec("DEMO_SHAPES_MCQ", "CustomMCQDataset")

    def fp(online: bool) -> tuple[dict, str]:
        return fingerprint.compute(
            task=task, model=spec_model(), settings=settings, judge=None, with_environment=False, hub_online=online
        )

    ran, ran_hash = fp(False)
    assert ran["model"]["weights"] == {"hub": REPO, "revision": "main", "sha": first}
    assert fp(True)[1] == ran_hash  # the Hub still points at what ran
    second = fake.commit(REPO, {**FILES, "model.safetensors": b"\1" * 300_000})
    hub._online_cache.clear()
    now, now_hash = fp(True)
    assert now["model"]["weights"]["sha"] == second and now_hash != ran_hash
    assert fingerprint.model_change(ran, now) == "weights"


def test_registry_model_weights_come_from_its_default_path(
    fake: FakeHub, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = registry.Registry("t", {}, {"TinyReg": {"class": "InternVLChat", "path": REPO}, "GPT4o": {"path": None}})
    monkeypatch.setattr(registry, "load", lambda settings: reg)
    sha = fake.commit(REPO, FILES)
    got = hub.prefetch(ModelSpec("TinyReg"), settings)
    assert got is not None and got.sha == sha
    model, env = hub.offline_model(ModelSpec("TinyReg"), settings)
    assert model == ModelSpec("TinyReg") and env["HF_HUB_OFFLINE"] == "1"
    assert hub.prefetch(ModelSpec("GPT4o"), settings) is None
    with pytest.raises(InvalidRequestError, match="model_spec"):
        hub.prefetch(ModelSpec("TinyReg", revision="v2"), settings)


def test_unknown_repo_fails_with_the_fix(fake: FakeHub, settings: Settings) -> None:
    with pytest.raises(InvalidRequestError, match="HF_ENDPOINT, and HF_TOKEN"):
        hub.prefetch(spec_model(), settings)


def test_local_paths_and_endpoints_are_not_hub_models(settings: Settings, tmp_path: Path) -> None:
    assert hub.hub_weights(ModelSpec("X", {"class": "DOCLING", "model_path": str(tmp_path)}), settings) is None
    assert hub.hub_weights(ModelSpec("X", endpoint_base_url="http://127.0.0.1:1/v1"), settings) is None
    assert hub.is_repo_id("Qwen/Qwen2-VL-2B-Instruct") and not hub.is_repo_id("/abs/path")
