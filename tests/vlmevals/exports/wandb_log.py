"""Read an offline W&B run folder back: its `run-<id>.wandb` transaction log, decoded with wandb's own protobuf
`Record` (wandb.proto.wandb_internal_pb2).

wandb 0.31 ships no Python reader of that file (its reader is in the Go `wandb-core`), so the framing is read
here: a 7-byte header (b":W&B", magic 0xBEE1, version 0), then LevelDB's log format (32 KiB blocks; each chunk a
7-byte header of masked CRC-32C, little-endian length and type FULL=1/FIRST=2/MIDDLE=3/LAST=4), each full record
one serialized `Record`. Each chunk's length and type are checked; a torn or unknown chunk fails the read.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:7] == HEADER, f"{path} is not a W&B transaction log: {data[:7]!r}"
    out, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        room = BLOCK - pos % BLOCK
        if room < 7:  # the block's tail is padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:  # zero padding to the block's end
            pos += room
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        assert len(chunk) == length and length <= room - 7, f"torn chunk at {pos} in {path}"
        assert kind in (FULL, FIRST, MIDDLE, LAST), f"unknown chunk type {kind} at {pos} in {path}"
        pos += 7 + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            rec = pb.Record()
            rec.ParseFromString(pending)
            out.append(rec)
            pending = b""
    return out


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else str(item.key)


@dataclass
class OfflineRun:
    """What one offline run folder says about its run, from its log alone."""

    run_id: str = ""
    entity: str = ""
    project: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    resume: bool = False  # asked to resume the run of this id (`wandb sync` appends to it)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    step_metrics: dict[str, str] = field(default_factory=dict)  # define_metric: glob or name -> its x-axis
    files: list[str] = field(default_factory=list)
    exit_code: int | None = None


def read_run(folder: Path) -> OfflineRun:
    [log] = folder.glob("run-*.wandb")
    run = OfflineRun()
    for rec in records(log):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.run_id, run.entity, run.project = r.run_id, r.entity, r.project
            run.name, run.group, run.job_type = r.display_name, r.run_group, r.job_type
            run.tags, run.resume = list(r.tags), r.resume
            run.config.update({_key(i): json.loads(i.value_json) for i in r.config.update})
        elif kind == "config":
            run.config.update({_key(i): json.loads(i.value_json) for i in rec.config.update})
        elif kind == "summary":
            run.summary.update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "metric":
            m = rec.metric
            if m.step_metric:
                run.step_metrics[m.glob_name or m.name] = m.step_metric
        elif kind == "files":
            run.files += [f.path for f in rec.files.files]
        elif kind == "exit":
            run.exit_code = rec.exit.exit_code
    run.config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in run.config.items()}
    return run


def runs_by_id(wandb_dir: Path) -> dict[str, list[OfflineRun]]:
    """Every offline run folder under `wandb_dir` (a resumed run has one folder per resumption), by run id."""
    out: dict[str, list[OfflineRun]] = {}
    for folder in sorted((wandb_dir / "wandb").glob("offline-run-*")):
        got = read_run(folder)
        out.setdefault(got.run_id, []).append(got)
    return out
