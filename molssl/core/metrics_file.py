"""``metrics.jsonl``, the trainer's log (one JSON record a line), kept in step with its checkpoint."""
from __future__ import annotations

import json
from pathlib import Path


def append_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def drop_records_after(path: Path, step: int, epoch: int) -> None:
    """Drop what a killed run logged after its last checkpoint (at ``step``, in ``epoch``): it will be logged again.

    Records of steps before ``step`` stay; at ``step`` itself a step record stays, and an epoch-end record (one with
    validation fields) only for an earlier epoch. A line cut short by the kill is dropped.
    """
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        ends_epoch = any(k.startswith(("val_", "valid_")) for k in record)
        if record.get("step", 0) < step or (record.get("step", 0) == step and
                                            (not ends_epoch or record.get("epoch", 0) < epoch)):
            kept.append(line)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
    tmp.replace(path)
