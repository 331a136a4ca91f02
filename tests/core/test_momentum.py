"""EMA updates, the frozen momentum encoder and the FIFO memory queue."""
import pytest
import torch
from torch import nn

from molssl.core.momentum import MemoryQueue, MomentumEncoder, ema_update


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_ema_update_math_for_parameters_and_buffers():
    torch.manual_seed(0)
    online, target = _net(), _net()
    online[1].running_mean.fill_(2.0)
    online[1].num_batches_tracked.fill_(7)
    before = [p.clone() for p in target.parameters()]
    mean_before = target[1].running_mean.clone()
    ema_update(target, online, 0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    torch.testing.assert_close(target[1].running_mean, 0.9 * mean_before + 0.1 * 2.0)
    assert int(target[1].num_batches_tracked) == 7  # integer buffers are copied, not averaged


@pytest.mark.parametrize("momentum, expect_online", [(0.0, True), (1.0, False)])
def test_ema_update_extremes(momentum, expect_online):
    torch.manual_seed(1)
    online, target = _net(), _net()
    original = [p.clone() for p in target.parameters()]
    ema_update(target, online, momentum)
    reference = online.parameters() if expect_online else original
    for t, r in zip(target.parameters(), reference):
        torch.testing.assert_close(t, r)


def test_momentum_encoder_is_a_frozen_copy_that_follows_the_online_net():
    torch.manual_seed(2)
    online = _net()
    encoder = MomentumEncoder(online, momentum=0.5)
    assert all(not p.requires_grad for p in encoder.parameters())
    x = torch.randn(4, 3)
    encoder.eval()
    online.eval()
    torch.testing.assert_close(encoder(x), online(x))
    assert not encoder(x).requires_grad
    start = [p.clone() for p in encoder.target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    encoder.update(online)
    for t, s, o in zip(encoder.target.parameters(), start, online.parameters()):
        torch.testing.assert_close(t, 0.5 * s + 0.5 * o)
    # the copy is independent: changing it does not touch the online network
    assert encoder.target[0].weight.data_ptr() != online[0].weight.data_ptr()


def test_momentum_encoder_rejects_bad_momentum():
    with pytest.raises(ValueError, match="momentum"):
        MomentumEncoder(_net(), momentum=1.5)


def test_memory_queue_is_fifo_and_wraps_around():
    queue = MemoryQueue(size=5, dim=2)
    keys = torch.arange(16, dtype=torch.float32).view(8, 2)  # key i is (2i, 2i+1)
    queue.enqueue(keys[:3])
    torch.testing.assert_close(queue.queue[:3], keys[:3])
    assert int(queue.pointer) == 3
    queue.enqueue(keys[3:7])  # 4 keys: slots 3, 4 then wrap to 0, 1
    torch.testing.assert_close(queue.queue, torch.stack([keys[5], keys[6], keys[2], keys[3], keys[4]]))
    assert int(queue.pointer) == 2
    # after 7 enqueued keys the queue holds exactly the 5 most recent ones
    assert {tuple(r.tolist()) for r in queue.queue} == {tuple(r.tolist()) for r in keys[2:7]}


def test_memory_queue_keeps_the_newest_when_given_more_keys_than_slots():
    queue = MemoryQueue(size=3, dim=2)
    keys = torch.arange(10, dtype=torch.float32).view(5, 2)
    queue.enqueue(keys)
    assert {tuple(r.tolist()) for r in queue.queue} == {tuple(r.tolist()) for r in keys[-3:]}


def test_memory_queue_detaches_and_rejects_bad_size():
    queue = MemoryQueue(size=4, dim=3)
    keys = torch.randn(2, 3, requires_grad=True)
    queue.enqueue(keys)
    assert not queue.queue.requires_grad
    assert "queue" in queue.state_dict() and "pointer" in queue.state_dict()
    with pytest.raises(ValueError, match="positive"):
        MemoryQueue(size=0, dim=3)
