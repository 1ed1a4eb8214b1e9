"""The Airflow adapter: the one place in the package (besides dev tooling) that imports `airflow`.

Named after what it adapts, as the VLMEvalKit adapter is; under absolute imports `vlmevals.airflow` never
shadows the top-level `airflow`. Layers above it (runs, results, pipeline, api) reach Airflow only through it:
our database's Connection (`hooks`), the REST API (`rest`), DAG runs started and failed inside the api-server
(`dag_runs`), the regression notifier (`notifiers`) and the API's security dependencies (`auth`).
Airflow is imported inside functions wherever a module is loaded at DAG-parse time.
"""
