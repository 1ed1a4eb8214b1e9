"""Schemathesis's engine run over the evals API (every phase: examples, coverage, fuzzing, stateful), reduced to
figures a reviewer can compare between runs: requests per phase, distinct failures by check, and for each failure
the request that reproduces it (a curl line)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

SEED = 20261202
MAX_EXAMPLES = 8  # per operation and phase
MAX_STEPS = 6  # per stateful scenario
MAX_TIME_S = 35  # per role: admin + viewer stay under ~90 s on the 2-core CI machine
PHASES = ("examples", "coverage", "fuzzing", "stateful")
# Refusals that depend on state no schema can state: names checked against VLMEvalKit's registry (POST /tasks,
# /models), tasks or suites that must exist (POST /suites, PATCH /models/{name}), runs that must belong to the task
# (compare), models named in a trigger's body (POST /tasks/{task_name}/runs, /suites/{suite}/runs), a checkpoint's
# weights folder that must exist or Hub revision that must resolve. They answer 422 with
# the reason; everywhere else a schema-valid request must not be refused.
_STATEFUL_422 = [
    ("POST", "/tasks"),
    ("POST", "/models"),
    ("PATCH", "/models/{name}"),
    ("POST", "/models/{name}/checkpoints"),
    ("POST", "/suites"),
    ("POST", "/tasks/{task_name}/runs"),
    ("POST", "/suites/{suite}/runs"),
    ("GET", "/tasks/{task_name}/compare"),
]
_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


@dataclass
class FuzzReport:
    role: str
    requests: Counter[str] = field(default_factory=Counter)  # per phase
    failures: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))  # check -> op -> repro
    errors: list[str] = field(default_factory=list)
    stop_reason: str = ""

    @property
    def failure_count(self) -> int:
        return sum(len(ops) for ops in self.failures.values())

    def figures(self) -> str:
        by_kind = ", ".join(f"{k}={len(v)}" for k, v in sorted(self.failures.items())) or "none"
        phases = ", ".join(f"{p}={self.requests[p]}" for p in PHASES)
        return (
            f"[{self.role}] requests {sum(self.requests.values())} ({phases}); distinct failures "
            f"{self.failure_count} ({by_kind}); engine errors {len(self.errors)}; stop: {self.stop_reason}"
        )

    def details(self) -> str:
        lines = [self.figures()]
        for kind, ops in sorted(self.failures.items()):
            for op, repro in sorted(ops.items()):
                lines.append(f"--- {kind} on {op}\n{repro}")
        lines += [f"--- engine error: {e}" for e in self.errors]
        return "\n".join(lines)


def _config(token: str) -> Any:
    import schemathesis

    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "max-time": MAX_TIME_S,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none", "deterministic": True},
            "phases": {p: {"enabled": True} for p in PHASES} | {"stateful": {"enabled": True, "max-steps": MAX_STEPS}},
            "suppress-health-check": ["all"],
            "operations": [
                {
                    "include-method": method,
                    "include-path": path,
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*_ACCEPTED, "422"]}},
                }
                for method, path in _STATEFUL_422
            ],
        }
    )


def _record(report: FuzzReport, event: Any) -> None:
    from schemathesis.engine import Status

    report.requests[event.phase.value] += len(event.recorder.interactions)
    for case_id, nodes in event.recorder.checks.items():
        for node in nodes:
            if node.status != Status.FAILURE or node.failure_info is None:
                continue
            info = node.failure_info
            steps = "\n".join(s.curl for s in info.steps) or info.code_sample
            response = event.recorder.find_response(case_id=case_id)
            got = f"answered {response.status_code}: {response.content[:200]!r}" if response else "no response"
            op = info.failure.operation or (info.steps[0].operation if info.steps else event.label)
            key = f"{op} [{info.failure.title}]"
            report.failures[node.name].setdefault(key, f"{info.failure.message[:300]}\n{got}\n{steps[:1500]}")


def run_fuzz(app: Any, token: str, role: str, schema_path: str = "/api/evals/openapi.json") -> FuzzReport:
    """Every phase against `app` (an ASGI app) as the holder of `token`, with a fixed seed and time budget."""
    import schemathesis
    from schemathesis.engine import events, from_schema

    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi(schema_path, app, config=_config(token), headers=auth)
    report = FuzzReport(role=role)
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(report, event)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            report.errors.append(str(getattr(event, "info", event))[:800])
        elif isinstance(event, events.EngineFinished):
            report.stop_reason = event.stop_reason.value
    return report
