"""metrics.jsonl after a kill: what the last checkpoint covers stays, the rest goes (it will be logged again)."""
import json

from molssl.core.metrics_file import append_record, drop_records_after


def test_records_after_the_checkpoint_and_a_cut_line_are_dropped(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"
    records = [{"step": 2, "epoch": 0, "loss": 1.0}, {"step": 4, "epoch": 0, "loss": 0.9},
               {"step": 4, "epoch": 0, "valid_rmse": 0.5},  # epoch 0 ended at step 4, before the checkpoint
               {"step": 6, "epoch": 1, "loss": 0.8}, {"step": 8, "epoch": 1, "val_loss": 0.7}]
    for record in records:
        append_record(path, record)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"step": 9, "ep')  # the kill cut this line short
    drop_records_after(path, step=4, epoch=1)  # the checkpoint: after step 4, in epoch 1
    assert [json.loads(line) for line in path.read_text().splitlines()] == records[:3]
    drop_records_after(path, step=4, epoch=0)  # a checkpoint written before epoch 0's end record
    assert [json.loads(line) for line in path.read_text().splitlines()] == records[:2]
    drop_records_after(tmp_path / "none.jsonl", step=1, epoch=0)  # no log yet: nothing to do
    assert not (tmp_path / "none.jsonl").exists()
