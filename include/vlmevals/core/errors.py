"""Domain errors. Each message names the problem and the fix; the API maps them to 4xx, DAG tasks to a failed run."""


class EvalsError(Exception):
    """Base class: a request we refuse with a readable reason."""


class NotFoundError(EvalsError):
    pass


class ConflictError(EvalsError):
    """`existing_id`: the id of what is in the way, a `run` unless `existing` names another kind."""

    def __init__(self, message: str, existing_id: int | None = None, existing: str = "run") -> None:
        super().__init__(message)
        self.existing_id, self.existing = existing_id, existing


class InvalidRequestError(EvalsError):
    pass


class VLMEvalFailure(EvalsError):
    """VLMEvalKit ran but did not produce a result (its exit code alone does not tell).

    `retryable` is False when VLMEvalKit itself recorded the failure (same input, same outcome) and True for
    crashes and kills, where a retry resumes from the partial results.
    """

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
