"""Per-sample results: read VLMEvalKit's per-sample files, store them in `eval_samples`, summarise them.

Modules: `parse` (which file, which columns, failure markers -> SampleRecord), `summary` (official and
valid-only score, confidence interval), `store` (COPY ingestion and the SQL reads), `ingest` (the
ingest_metrics hook tying them together), `images` (sample images from the dataset TSV), `xlsx` (a fast
reader of the per-sample .xlsx files, equal to pandas where it answers).

Why rows in PostgreSQL (not a Parquet file per run): the API filters (category, wrong/failed) and pages them
with SQL, comparisons join two runs on (run_id, sample_index) through the primary key, re-ingesting is one
transaction (delete + COPY) so a rerun can never leave half a run, and there is nothing else to back up.
A sample row is ~0.3-2 KB (measured by bench/samples_bench.py): a 10,000-sample benchmark is a few MB per run,
thousands of runs tens of GB, which PostgreSQL handles; the leaderboard never reads this table (the summary
lives on eval_runs: samples_total, samples_failed, ci_low, ci_high).
"""

from vlmevals.results.samples.ingest import ingest_for_run

__all__ = ["ingest_for_run"]  # the pipeline's entry point (vlmevals.pipeline.steps)
