"""Reading chemprop's log for progress: epoch lines are found after a progress bar's carriage returns, and a line
still being written is left for the next look. (chemprop's own runs: test_chemprop_resumable.py.)"""
from molssl.chem.tasks.chemprop_baseline import EPOCH, _relay


def test_epoch_lines_are_relayed_once_and_only_when_complete(tmp_path):
    log = tmp_path / "chemprop.log"
    log.write_bytes(b"Epoch 0:  50%|#####     | 1/2\rEpoch 0: 100%|##########| 2/2" + EPOCH.encode()
                    + b" 1/50: val_loss 0.6931\nINFO something else\n" + EPOCH.encode() + b" 2/5")
    shown = []
    offset = _relay(log, 0, shown.append)
    assert shown == ["chemprop epoch 1/50: val_loss 0.6931"]
    with open(log, "ab") as handle:
        handle.write(b"0: val_loss 0.6702\n")
    offset = _relay(log, offset, shown.append)
    assert shown == ["chemprop epoch 1/50: val_loss 0.6931", "chemprop epoch 2/50: val_loss 0.6702"]
    assert offset == log.stat().st_size and _relay(log, offset, shown.append) == offset and len(shown) == 2
