"""The regression notifier: an Airflow notifier (or any callable) named in the environment, fired like a callback."""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

NOTIFIER_ENV = "EVALS_REGRESSION_NOTIFIER"
NOTIFIER_KWARGS_ENV = "EVALS_REGRESSION_NOTIFIER_KWARGS"


def load_notifier() -> Any | None:
    """The notifier named by EVALS_REGRESSION_NOTIFIER (`pkg.module.Class` or `pkg.module:attr`): a class is
    instantiated with the JSON kwargs in EVALS_REGRESSION_NOTIFIER_KWARGS (e.g. an Airflow BaseNotifier such as
    SlackNotifier), anything else is used as is. Called like any Airflow callback: `notifier(context)`."""
    path = os.environ.get(NOTIFIER_ENV, "").strip()
    if not path:
        return None
    mod_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    obj = getattr(importlib.import_module(mod_name), attr)
    if isinstance(obj, type):
        kwargs = json.loads(os.environ.get(NOTIFIER_KWARGS_ENV, "") or "{}")
        obj = obj(**kwargs)
    return obj
