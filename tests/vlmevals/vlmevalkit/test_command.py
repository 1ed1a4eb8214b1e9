from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from vlmevals.core.settings import Settings
from vlmevals.vlmevalkit.command import ModelSpec, TaskSpec, build_invocation, default_dataset_class


def _settings(tmp_path: Path, **kw) -> Settings:
    return Settings.model_validate(
        {
            "LMUData": str(tmp_path / "lmu"),
            "EVALS_MODELS_DIR": str(tmp_path / "m"),
            "VLMEVAL_PYTHON": "/usr/bin/python3",
            **kw,
        }
    )


def test_registry_model(tmp_path: Path) -> None:
    inv = build_invocation(
        settings=_settings(tmp_path),
        task=TaskSpec("MMBench_DEV_EN"),
        model=ModelSpec("InternVL2_5-2B"),
        work_dir=tmp_path / "w",
        mode="infer",
        limit=5,
    )
    assert inv.argv[:2] == ["/usr/bin/python3", "-c"] and inv.argv[3:5] == ["-m", "vlmeval"]
    assert "python3 -c <launcher: gc.freeze at exit> -m vlmeval --model" in inv.redacted()
    joined = " ".join(inv.argv)
    assert "--model InternVL2_5-2B --data MMBench_DEV_EN" in joined
    assert "--mode infer --reuse --limit 5 --judge exact_matching" in joined
    assert inv.env["LMUData"] == str(tmp_path / "lmu") and inv.config is None


def test_spec_model_writes_config_with_expanded_paths(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    s.lmu_data.mkdir(parents=True)
    (s.lmu_data / "MY_MCQ.tsv").write_text("index\tquestion\tA\tB\timage\tanswer\n")
    inv = build_invocation(
        settings=s,
        task=TaskSpec("MY_MCQ"),
        model=ModelSpec("Tiny", model_spec={"class": "DOCLING", "model_path": "{models_dir}/t"}),
        work_dir=tmp_path / "w",
        mode="eval",
    )
    assert "--config" in inv.argv and "--model" not in inv.argv and "--reuse" in inv.argv
    assert inv.config == {
        "model": {"Tiny": {"class": "DOCLING", "model_path": f"{tmp_path}/m/t"}},
        "data": {"MY_MCQ": {"class": "CustomMCQDataset", "dataset": "MY_MCQ"}},
    }


def test_spec_model_on_registry_dataset_needs_class(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vlmeval_dataset_class"):
        build_invocation(
            settings=_settings(tmp_path),
            task=TaskSpec("MMBench_DEV_EN"),
            model=ModelSpec("Tiny", model_spec={"class": "DOCLING"}),
            work_dir=tmp_path,
            mode="infer",
        )


def test_endpoint_model_key_from_env_and_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-secret")
    inv = build_invocation(
        settings=_settings(tmp_path),
        task=TaskSpec("D"),
        model=ModelSpec("served", endpoint_base_url="http://127.0.0.1:9/v1", endpoint_key_env="MY_KEY", gpus=0),
        work_dir=tmp_path,
        mode="infer",
        api_nproc=8,
    )
    joined = " ".join(inv.argv)
    assert "--base-url http://127.0.0.1:9/v1 --key sk-secret --api-nproc 8" in joined
    assert "sk-secret" not in inv.redacted() and "--key ***" in inv.redacted()


def test_torchrun_and_checkout(tmp_path: Path) -> None:
    s = _settings(tmp_path, VLMEVAL_ROOT=str(tmp_path / "VLMEvalKit"))
    inv = build_invocation(
        settings=s,
        task=TaskSpec("D"),
        model=ModelSpec("M", gpus=4, launch_mode="torchrun"),
        work_dir=tmp_path,
        mode="infer",
    )
    assert inv.argv[:5] == [
        "/usr/bin/python3",
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=4",
        str(tmp_path / "VLMEvalKit" / "run.py"),
    ]
    inv = build_invocation(
        settings=_settings(tmp_path),
        task=TaskSpec("D"),
        model=ModelSpec("M", gpus=2, launch_mode="torchrun"),
        work_dir=tmp_path,
        mode="infer",
    )
    assert inv.argv[2:6] == ["torch.distributed.run", "--nproc-per-node=2", "--module", "vlmeval"]
    # one process seeing all devices (device_map="auto") is a plain launch
    inv = build_invocation(
        settings=_settings(tmp_path), task=TaskSpec("D"), model=ModelSpec("M", gpus=2), work_dir=tmp_path, mode="infer"
    )
    assert "torch.distributed.run" not in inv.argv


def test_llm_judge_settings(tmp_path: Path) -> None:
    s = _settings(tmp_path, EVALS_JUDGE_BASE_URL="http://127.0.0.1:7/v1", EVALS_JUDGE_KEY="k")
    inv = build_invocation(
        settings=s, task=TaskSpec("D"), model=ModelSpec("M"), work_dir=tmp_path, mode="eval", judge="gpt-4o-mini"
    )
    assert "--judge gpt-4o-mini --judge-base-url http://127.0.0.1:7/v1 --judge-key k" in " ".join(inv.argv)
    inv = build_invocation(settings=s, task=TaskSpec("D"), model=ModelSpec("M"), work_dir=tmp_path, mode="eval")
    assert "--judge-base-url" not in inv.argv  # exact matching is offline


def test_default_dataset_class(tmp_path: Path) -> None:
    for header, expected in [
        ("index\tquestion\tA\tB\timage", "CustomMCQDataset"),
        ("index\tquestion\tA\tB", "CustomTextMCQDataset"),
        ("index\tquestion\tanswer\timage", "CustomVQADataset"),
    ]:
        p = tmp_path / "x.tsv"
        p.write_text(header + "\n")
        assert default_dataset_class(p) == expected


def test_endpoint_nproc_is_the_models_else_the_service_default(tmp_path: Path) -> None:
    def nproc(model: ModelSpec, settings: Settings) -> str:
        argv = build_invocation(
            settings=settings, task=TaskSpec("D"), model=model, work_dir=tmp_path, mode="infer"
        ).argv
        return argv[argv.index("--api-nproc") + 1]

    served = ModelSpec("served", endpoint_base_url="http://127.0.0.1:9/v1", gpus=0)
    assert nproc(served, _settings(tmp_path)) == "4"
    assert nproc(served, _settings(tmp_path, EVALS_API_NPROC_DEFAULT=7)) == "7"
    assert nproc(replace(served, api_nproc=12), _settings(tmp_path)) == "12"
