"""The evals REST API (FastAPI), mounted by the Airflow plugin at /api/evals."""
