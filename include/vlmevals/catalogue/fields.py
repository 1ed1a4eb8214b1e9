"""The domain of each catalogue field, defined once as an annotated type: the pattern, bounds or enum that
pydantic enforces are the ones the OpenAPI document (and the DAG params' JSON schema) states.

Text a person reads (names, descriptions) holds no control characters (descriptions may break lines) and no
unpaired surrogates (refused by pydantic as invalid unicode); every string has an upper bound that the
database column can hold.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from vlmevals.core.constants import API_NPROC_MAX
from vlmevals.db.models import SLUG_PATTERN

# invisible format characters that make two names look alike or reorder text (zero-width space/joiners,
# bidi embeddings/overrides/isolates, word joiner, BOM); written as \uXXXX, which Python, Rust and JS read alike
_INVISIBLE = r"\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
# one line of text: no C0/C1 control characters (DEL included), no invisible format characters
LINE_PATTERN = rf"^[^\x00-\x1f\x7f-\x9f{_INVISIBLE}]+$"
# several lines: as above, but tab and line breaks allowed
PARAGRAPH_PATTERN = rf"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_INVISIBLE}]*$"
# a VLMEvalKit --data / --model name (also a file name stem in LMUData and the outputs folder)
VLMEVAL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,255}$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
METRIC_SUFFIX_PATTERN = r"^[A-Za-z0-9_.\-]{0,59}\.(csv|json)$"
# scheme, a host name or IPv4 address, an optional port and path; no user info, no IPv6 literal
HTTP_URL_PATTERN = r"^https?://[A-Za-z0-9][A-Za-z0-9.\-]{0,252}(:[0-9]{1,5})?(/[^\s\x00-\x1f\x7f-\x9f]*)?$"

Slug = Annotated[
    str,
    Field(
        pattern=SLUG_PATTERN,
        description="lower-case letters, digits, '.', '_' or '-'; starts with a letter "
        "or digit; at most 128 characters",
        examples=["mmbench-dev-en"],
    ),
]
DisplayName = Annotated[
    str, Field(min_length=1, max_length=256, pattern=LINE_PATTERN, description="one line, no control characters")
]
Description = Annotated[
    str, Field(max_length=4000, pattern=PARAGRAPH_PATTERN, description="free text; line breaks allowed")
]
VlmevalName = Annotated[
    str,
    Field(pattern=VLMEVAL_NAME_PATTERN, description="letters, digits, '_', '.', '+' or '-'; at most 256 characters"),
]
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="a Python/environment identifier")]
MetricKey = Annotated[
    str,
    Field(
        max_length=256,
        pattern=LINE_PATTERN,
        description="column of the metric table (e.g. Overall) or a flattened key such as 'split=dev|Overall'",
    ),
]
MetricSuffix = Annotated[
    str,
    Field(
        pattern=METRIC_SUFFIX_PATTERN,
        description="end of VLMEvalKit's metric file name: a .csv or .json table, e.g. _acc.csv",
        examples=["_acc.csv", "_score.csv"],
    ),
]


def _not_bool(v: Any) -> Any:
    """JSON true/false is not a number (pydantic would read true as 1)."""
    if isinstance(v, bool):
        raise ValueError("metric_scale is a number: 1 (fractions) or 100 (percent)")
    return v


def _json_int(v: Any) -> Any:
    """A JSON integer: 12 or 12.0, not "12" or true (pydantic's lax mode would take both)."""
    if isinstance(v, bool | str):
        raise ValueError("give a JSON number without a fraction, e.g. 1")
    return v


JsonInt = Annotated[int, BeforeValidator(_json_int)]
# bounds before the validator: pydantic then documents them as minimum/maximum (after it, as invalid ge/le keys)
NprocInt = Annotated[int, Field(ge=1, le=API_NPROC_MAX), BeforeValidator(_json_int)]
MetricScale = Annotated[Literal[1, 100], BeforeValidator(_not_bool)]


def _parses_as_url(v: str) -> str:
    """A pattern admits what urllib cannot read ("http://[x", port 99999): refused here, not at download time."""
    try:
        parts = urlsplit(v)
        _ = parts.port
    except ValueError as err:
        raise ValueError(f"not a URL that can be opened ({err}); give http(s)://host[:port]/path") from None
    if not parts.hostname:
        raise ValueError("the URL has no host name; give http(s)://host[:port]/path")
    return v


HttpUrl = Annotated[
    str,
    Field(
        max_length=512,
        pattern=HTTP_URL_PATTERN,
        description="http:// or https:// URL of a host name or IPv4 address, e.g. http://127.0.0.1:8000/v1",
    ),
    AfterValidator(_parses_as_url),
]
DatasetUrl = Annotated[
    str,
    Field(
        max_length=2048,
        pattern=r"^https?://",
        description="download the dataset TSV from here (a dataset of your own); needs dataset_md5",
    ),
    AfterValidator(_parses_as_url),
]
