"""chemprop's subprocess seen from molssl: epoch lines are found in its log after a progress bar's carriage returns
(a line still being written waits for the next look), and a refused resume is one sentence. (chemprop's own runs:
test_chemprop_resumable.py.)"""
import json
import sys

import pytest

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


def test_a_refused_resume_is_one_sentence_and_its_time_still_counts(tmp_path):
    from molssl.chem.tasks.chemprop_baseline import REFUSED, REFUSED_STATUS, SPENT, _run
    from molssl.errors import MolsslError

    script = f"print('{REFUSED} out/best.pt names posix.system, which is not one of its classes'); raise SystemExit({REFUSED_STATUS})"
    with pytest.raises(MolsslError, match=r"^chemprop was not resumed: out/best.pt names posix.system, which is not "
                                          r"one of its classes; delete .* to train it again$"):
        _run([sys.executable, "-c", script], tmp_path / "chemprop.log", threads=1)
    assert json.loads((tmp_path / SPENT).read_text())["seconds"] > 0
