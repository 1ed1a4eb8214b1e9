"""Names checked against the installed VLMEvalKit's registry (read from its cache file, not by import)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vlmevals.catalogue.names import check_model, check_task, closest
from vlmevals.catalogue.schemas.tasks_models import ModelCreate, TaskCreate
from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import Settings


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "lmu").mkdir()
    return Settings.model_validate({"LMUData": tmp_path / "lmu", "VLMEVAL_OUTPUTS": tmp_path / "out"})


def task(data: str, **kw: str) -> TaskCreate:
    return TaskCreate.model_validate({"name": "t", "display_name": "T", "vlmeval_data": data, **kw})


def test_misspelt_dataset_lists_the_closest_registered_names(settings: Settings) -> None:
    with pytest.raises(InvalidRequestError) as err:
        check_task(task("MMBench_DEV_ENN"), settings)
    msg = str(err.value)
    assert "'MMBench_DEV_ENN' is not a dataset VLMEvalKit knows" in msg and "MMBench_DEV_EN" in msg
    assert "dataset_url" in msg and str(settings.lmu_data) in msg


def test_registered_custom_and_url_datasets_pass_with_their_judge_need(settings: Settings) -> None:
    assert check_task(task("MMBench_DEV_EN"), settings).needs_llm_judge is False
    charxiv = check_task(task("CharXiv_reasoning_val"), settings)
    assert charxiv.needs_llm_judge is True
    assert check_task(task("MathVista_MINI"), settings).default_judge == "gpt-4o-mini"
    (settings.lmu_data / "MY_OWN.tsv").write_text("index\tquestion\n")
    assert check_task(task("MY_OWN"), settings).needs_llm_judge is False
    url = task("LAB_BENCH", dataset_url="http://10.0.0.1/lab.tsv", dataset_md5="0" * 32)
    assert check_task(url, settings).needs_llm_judge is False


def test_dataset_url_needs_its_md5() -> None:
    with pytest.raises(ValueError, match="dataset_url and dataset_md5 together"):
        task("LAB_BENCH", dataset_url="http://10.0.0.1/lab.tsv")


def test_model_names_are_checked_only_without_spec_or_endpoint(settings: Settings) -> None:
    def model(**kw: object) -> ModelCreate:
        return ModelCreate.model_validate({"name": "m", "display_name": "M", **kw})

    check_model(model(vlmeval_model="InternVL2_5-2B"), settings)
    check_model(model(vlmeval_model="anything", model_spec={"class": "DOCLING", "model_path": "a/b"}), settings)
    check_model(model(vlmeval_model="served", endpoint_base_url="http://127.0.0.1:1/v1"), settings)
    with pytest.raises(InvalidRequestError, match="closest registered names: InternVL2_5-2B"):
        check_model(model(vlmeval_model="InternVL2.5-2B"), settings)


def test_closest_prefers_a_case_insensitive_match() -> None:
    assert closest("mmbench_dev_en", ["MMBench_DEV_EN", "MMBench_DEV_CN", "AI2D"])[0] == "MMBench_DEV_EN"
    assert closest("zzzz", ["MMBench_DEV_EN"]) == []
