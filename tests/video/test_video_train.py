"""Frame-order tuples, and a few training steps of CVRL and shuffle-and-learn with checkpoints and probes."""
import json

import pytest
import torch

from molssl.video.data import moving_digits
from molssl.video.pretext import FrameOrderVerification, sample_order_tuples
from molssl.video.pretrain import (METHODS, load_encoder, make_config, pretrain, probe_video_encoders,
                                   random_init_encoder)
from molssl.vision.data import ImageDataset
from molssl.vision.encoders import ConvEncoder

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def videos():
    g = torch.Generator().manual_seed(0)
    digits = ImageDataset(torch.randint(0, 256, (40, 1, 28, 28), generator=g, dtype=torch.uint8),
                          torch.arange(40) % 4, ["0", "1", "2", "3"])
    return moving_digits(digits, frames=10, canvas=16, digit_size=10, seed=0)


def test_order_tuples_positive_iff_monotonic():
    torch.manual_seed(0)
    frames, labels = sample_order_tuples(4000, 12)
    increasing = (frames[:, 1] > frames[:, 0]) & (frames[:, 2] > frames[:, 1])
    decreasing = (frames[:, 1] < frames[:, 0]) & (frames[:, 2] < frames[:, 1])
    assert torch.equal(labels.bool(), increasing | decreasing)
    assert abs(labels.float().mean() - 0.5) < 0.05 and abs(increasing.float().mean() - decreasing.float().mean()) < 0.05
    assert frames.min() >= 0 and frames.max() < 12
    with pytest.raises(ValueError, match="at least 5 frames"):
        sample_order_tuples(2, 4)


def test_order_tuples_stay_inside_a_window():
    torch.manual_seed(1)
    frames, _ = sample_order_tuples(2000, 16, window=6)
    span = frames.max(dim=1).values - frames.min(dim=1).values
    assert span.max() <= 5 and frames.min() >= 0 and frames.max() <= 15
    assert frames.min(dim=1).values.max() >= 8  # windows start anywhere, not only at frame 0
    with pytest.raises(ValueError, match="window"):
        sample_order_tuples(2, 16, window=4)


@pytest.mark.parametrize("method", METHODS)
def test_each_video_method_trains_checkpoints_and_probes(method, videos, tmp_path):
    config = make_config(method, epochs=1, batch_size=16, clip_len=4, frames=10, size=16, widths=(4, 8, 8))
    module, state = pretrain(config, tmp_path, device=CPU, progress=False, train=videos, log=lambda _: None)
    assert state.step == 2
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert torch.isfinite(torch.tensor(record["loss"]))
    start = random_init_encoder(config).state_dict()
    assert any(not torch.equal(v, start[k]) for k, v in module.encoder.state_dict().items() if v.is_floating_point())
    encoder, stored = load_encoder(tmp_path / "checkpoint.pt", CPU)
    assert stored.method == method and stored == config
    scores = probe_video_encoders({"trained": encoder}, videos.subset(torch.arange(30)), videos.subset(torch.arange(30, 40)),
                                  4, CPU, ["direction", "digit"])
    assert set(scores["trained"]) == {"direction", "digit"}
    assert all(0.0 <= v <= 1.0 for v in scores["trained"].values())
    with pytest.raises(ValueError, match="unknown label"):
        probe_video_encoders({"trained": encoder}, videos, videos, 4, CPU, ["colour"])


def test_frame_order_classifier_starts_with_a_3d_conv_stage(videos):
    torch.manual_seed(0)
    model = FrameOrderVerification(ConvEncoder(1, (4, 8), dims=3))
    seen = []
    model.head_stage.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[1:]))
    loss, _ = model(videos.videos[:6])
    assert seen == [torch.Size([8, 2, 8, 8])]  # the unpooled (C, T, H, W) map of 3-frame, 16-px tuples
    loss.backward()
    assert model.head_stage.net[0].weight.grad.abs().sum() > 0
    assert FrameOrderVerification(ConvEncoder(1, (4, 8), dims=3), conv_head=False).head_stage is None


def test_a_video_checkpoint_with_other_preprocessing_is_refused(videos, tmp_path):
    from molssl.errors import MolsslError

    config = make_config("cvrl", epochs=1, batch_size=16, clip_len=4, frames=10, size=16, widths=(4, 8, 8))
    pretrain(config, tmp_path / "run", device=CPU, progress=False, train=videos, log=lambda _: None)
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert checkpoint["config"]["preprocessing"] == 1 and checkpoint["config"]["molssl_version"]
    checkpoint["config"]["preprocessing"] = 0
    torch.save(checkpoint, tmp_path / "other.pt")
    with pytest.raises(MolsslError, match="other.pt was trained with cvrl preprocessing version 0"):
        load_encoder(tmp_path / "other.pt", CPU)
