"""Served test models for the benches: the OpenAI-compatible test server (real HTTP, the protocol VLMEvalKit's
`--base-url` client speaks) answering after a fixed delay, and catalogue rows pointing at it."""

from __future__ import annotations

from typing import Any

DATA = "BENCH_SERVED_MCQ"
TASK = "bench-served-mcq"


def setup_served(stack: Any, models: int, n: int = 20, delay_s: float = 0.0) -> tuple[Any, list[str]]:
    """Start the server, write the benchmark TSV, add the task and `models` served models; return (server, names)."""
    from vlmevals.core.settings import get_settings
    from vlmevals.db.engine import get_engine, session_scope
    from vlmevals.db.models import Model, Task
    from vlmevals.devtools.demo.benchmark import render_benchmark

    from tests.doubles.openai_server import serve

    tsv = get_settings().lmu_data / f"{DATA}.tsv"
    tsv.write_bytes(render_benchmark("DEMO_SHAPES_MCQ", n=n))
    server = serve(mode="oracle", tsv=str(tsv), delay_s=delay_s)
    names = [f"served-{i:02d}" for i in range(models)]
    with session_scope(get_engine(stack.database_url)) as s:
        s.add(
            Task(
                name=TASK, display_name="Bench served MCQ", vlmeval_data=DATA, vlmeval_dataset_class="CustomMCQDataset"
            )
        )
        for name in names:
            s.add(
                Model(
                    name=name,
                    display_name=name,
                    vlmeval_model=f"Served{name[-2:]}",
                    endpoint_base_url=server.base_url,
                    gpus=1,
                )
            )
    return server, names
