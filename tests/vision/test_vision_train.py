"""A few training steps of every image method on tiny data, with core.fit, checkpoints and resume."""
import dataclasses
import json

import pytest
import torch

from molssl.core.runs import training_seconds
from molssl.errors import MolsslError
from molssl.vision.contrastive import MoCo, byol_momentum
from molssl.vision.data import load_mnist
from molssl.vision.pretrain import METHODS, build_module, load_encoder, make_config, pretrain, random_init_encoder

CPU = torch.device("cpu")
TINY = {"moco": {"queue_size": 40}, "jigsaw": {"num_permutations": 8}}
GREY_METHODS = [m for m in METHODS if m != "colorization"]  # colorization needs colour images (tests/vision/test_vision_methods.py)


@pytest.fixture(scope="module")
def tiny():
    return load_mnist().subset(torch.arange(0, 5000, 100))  # 50 real digits, 5 per class


def _config(method, **kw):
    settings = {"epochs": 1, "batch_size": 16, "widths": (8, 16), "options": TINY.get(method), **kw}
    return make_config(method, "mnist", **settings)


@pytest.mark.parametrize("method", GREY_METHODS)
def test_each_method_trains_a_few_steps_and_checkpoints(method, tiny, tmp_path):
    config = _config(method)
    module, state = pretrain(config, tmp_path, device=CPU, progress=False, train=tiny, log=lambda _: None)
    assert state.step == 3  # 50 images, batches of 16, last partial batch dropped
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records and all(torch.isfinite(torch.tensor(r["loss"])) for r in records)
    encoder, stored = load_encoder(tmp_path / "checkpoint.pt", CPU)
    assert stored.method == method
    start = random_init_encoder(stored).state_dict()  # the stored config: memory banks sized to the data
    changed = [k for k, v in module.encoder.state_dict().items() if v.is_floating_point() and not torch.equal(v, start[k])]
    assert changed, "training did not move the encoder"
    for k, v in module.encoder.state_dict().items():
        torch.testing.assert_close(encoder.state_dict()[k], v)


def test_moco_queue_and_key_encoder_follow_the_paper(tiny):
    torch.manual_seed(0)
    config = make_config("moco", "mnist", widths=(8, 16), options={"queue_size": 40, "momentum": 0.9})
    model: MoCo = build_module(config)
    assert model.key_net.momentum == 0.9
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    key_before = [p.clone() for p in model.key_net.parameters()]
    loss, _ = model(tiny.images[:16])
    assert int(model.queue.pointer) == 16  # keys enqueued in training mode
    optimizer.zero_grad()
    loss.backward()
    assert all(p.grad is None for p in model.key_net.parameters())  # no gradient into the key encoder
    optimizer.step()
    model.after_optimizer_step()
    for k, k0, q in zip(model.key_net.parameters(), key_before, model.query_net.parameters()):
        torch.testing.assert_close(k, 0.9 * k0 + 0.1 * q)
    model.eval()
    model(tiny.images[:16])
    assert int(model.queue.pointer) == 16  # evaluation does not enqueue


def test_byol_momentum_rises_from_base_to_one():
    values = [byol_momentum(0.996, k, 100) for k in range(101)]
    assert values[0] == pytest.approx(0.996) and values[-1] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert byol_momentum(0.99, 5, 0) == 0.99


def test_resume_continues_and_refuses_to_overwrite(tiny, tmp_path, monkeypatch):
    config = _config("rotation", epochs=2)
    steps = []

    def stop_after_two(module):
        steps.append(1)
        if len(steps) == 2:
            raise KeyboardInterrupt  # as Ctrl-C would: the trainer checkpoints, then re-raises

    with monkeypatch.context() as patch:
        patch.setattr("molssl.vision.pretext.RotationPrediction.after_optimizer_step", stop_after_two, raising=False)
        with pytest.raises(KeyboardInterrupt):
            pretrain(config, tmp_path, device=CPU, progress=False, train=tiny, log=lambda _: None)
    with pytest.raises(MolsslError, match="--resume"):
        pretrain(config, tmp_path, device=CPU, progress=False, train=tiny)
    with pytest.raises(MolsslError, match=r"epochs: 2 -> 3"):
        pretrain(dataclasses.replace(config, epochs=3), tmp_path, device=CPU, progress=False, train=tiny, resume=True)
    _, state = pretrain(config, tmp_path, device=CPU, progress=False, train=tiny, resume=True, log=lambda _: None)
    assert state.step == 6


def test_rotation_prediction_learns_on_a_small_batch(tiny, tmp_path):
    config = dataclasses.replace(_config("rotation"), epochs=10, batch_size=48, lr=3e-3)
    trained, _ = pretrain(config, tmp_path, device=CPU, progress=False, train=tiny, log=lambda _: None)
    torch.manual_seed(config.seed)
    untrained = build_module(config)
    with torch.no_grad():  # train-mode BatchNorm: both use this batch's statistics
        (loss_before, before), (loss_after, after) = untrained(tiny.images), trained(tiny.images)
    assert loss_after < loss_before - 0.02
    assert after["acc"] >= 0.35 > before["acc"]  # 4-way chance is 0.25


def test_training_seconds_sums_steps_over_logged_throughput(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    records = [{"step": 10, "sample_per_s": 64.0}, {"step": 10, "val_loss": 1.0}, {"step": 30, "sample_per_s": 128.0}]
    metrics.write_text("\n".join(json.dumps(r) for r in records))
    # 10 steps of 16 samples at 64/s, then 20 more at 128/s
    assert training_seconds(metrics, batch_size=16) == pytest.approx(10 * 16 / 64 + 20 * 16 / 128)


def test_weights_that_do_not_fit_the_recorded_config_get_a_clear_error(tiny, tmp_path):
    config = _config("rotation", max_steps=1, options={"conv_head": False})
    pretrain(config, tmp_path, device=CPU, progress=False, train=tiny, log=lambda _: None)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    checkpoint["config"]["options"] = {}  # a versioned record edited by hand: conv_head now takes today's default
    torch.save(checkpoint, tmp_path / "edited.pt")
    with pytest.raises(ValueError, match="edited.pt: its weights do not fit the RotationPrediction"):
        load_encoder(tmp_path / "edited.pt", CPU)
    other = dataclasses.replace(config, options={"conv_head": True})
    with pytest.raises(MolsslError, match=r"options.conv_head: False -> True"):
        pretrain(other, tmp_path, device=CPU, progress=False, train=tiny, resume=True)
