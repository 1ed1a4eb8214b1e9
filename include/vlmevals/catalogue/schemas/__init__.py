"""The catalogue's Pydantic schemas, one module per resource: tasks_models (tasks, models, enrolments, run
options), checkpoints, serve (a model's serve spec), suites. Import from the module that defines a name."""
