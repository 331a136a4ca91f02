import json

import pytest
import torch

from molssl.audio.batches import ClipBatches
from molssl.audio.model import ModelConfig, MultiFormatContrastive
from molssl.audio.pretrain import PretrainConfig, load_pretrained, pretrain
import molssl
from molssl.core.checkpoint import load_checkpoint
from molssl.core.losses import nt_xent
from molssl.errors import MolsslError

from .synthetic import RATE, tiny_model_config

CLIP = round(0.3 * RATE)


def run_config(data, out, variant="wave-spec", steps=3, **kwargs) -> PretrainConfig:
    return PretrainConfig(data=str(data), out_dir=str(out), model=tiny_model_config(variant), clip_samples=CLIP,
                          epochs=100, max_steps=steps, batch_size=6, lr=1e-2, device="cpu", checkpoint_every=2,
                          log_every=1, progress=False, **kwargs)


def test_variants_have_one_encoder_per_format():
    assert sorted(MultiFormatContrastive(tiny_model_config("wave-spec")).encoders) == ["spec", "wave"]
    assert list(MultiFormatContrastive(tiny_model_config("wave-wave")).encoders) == ["wave"]
    model = MultiFormatContrastive(tiny_model_config("spec-spec"))
    assert list(model.encoders) == ["spec"]
    with pytest.raises(ValueError, match="no 'wave' encoder"):
        model.represent(torch.zeros(2, 1600), "wave")
    with pytest.raises(ValueError, match="variant must be one of"):
        ModelConfig(variant="wave-video")


def test_loss_is_core_nt_xent_of_the_two_projected_views():
    model = MultiFormatContrastive(tiny_model_config())
    clips = torch.randn(5, CLIP)
    torch.manual_seed(7)
    loss, metrics = model(clips)
    torch.manual_seed(7)
    z1, z2 = model.project_views(clips)
    assert torch.allclose(loss, nt_xent(z1, z2, model.config.temperature))
    assert z1.shape == (5, 8) and set(metrics) == {"pos_cosine", "cross_view_top1"}


def test_cross_format_loss_trains_both_encoders():
    model = MultiFormatContrastive(tiny_model_config())
    loss, _ = model(torch.randn(4, CLIP))
    loss.backward()
    for fmt in ("wave", "spec"):
        grads = [p.grad for p in model.encoders[fmt].parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_batches_are_deterministic_and_cover_an_epoch():
    clips = torch.arange(20, dtype=torch.float32)[:, None].expand(20, 3)
    source = ClipBatches(clips, batch_size=6, seed=1)
    first = list(source.batches(0))
    assert len(source) == len(first) == 3 and all(b.shape == (6, 3) for b in first)
    assert len(set(torch.cat(first)[:, 0].tolist())) == 18
    assert all(torch.equal(a, b) for a, b in zip(first, source.batches(0)))
    assert torch.equal(list(source.batches(0, start=2))[0], first[2])
    assert not torch.equal(next(iter(source.batches(1))), first[0])
    with pytest.raises(ValueError, match="at least 2"):
        ClipBatches(clips, batch_size=1)


@pytest.mark.parametrize("variant", ["wave-spec", "wave-wave", "spec-spec"])
def test_a_few_training_steps_of_each_variant(tone_folders, tmp_path, variant):
    config = run_config(tone_folders[0], tmp_path, variant, steps=3)
    initial = {k: v.clone() for k, v in MultiFormatContrastive(config.model).state_dict().items()}
    trainer = pretrain(config, log=lambda _m: None)
    assert trainer.state.step == 3
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(r["loss"])) and 0 <= r["cross_view_top1"] <= 1 for r in records)
    model, saved = load_pretrained(tmp_path / "checkpoint.pt")
    assert saved.model == config.model and not model.training
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, initial[k])]
    assert any(k.startswith("encoders.") for k in changed) and any(k.startswith("heads.") for k in changed)


class InterruptedBatches(ClipBatches):
    """Raises KeyboardInterrupt (as Ctrl-C would) before the third batch it is asked for."""

    served = 0

    def batches(self, epoch, start=0):
        for batch in super().batches(epoch, start):
            if InterruptedBatches.served == 2:
                raise KeyboardInterrupt
            InterruptedBatches.served += 1
            yield batch


def test_resumed_run_equals_an_uninterrupted_one(tone_folders, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr("molssl.audio.pretrain.ClipBatches", InterruptedBatches)
        with pytest.raises(KeyboardInterrupt):
            pretrain(run_config(tone_folders[0], tmp_path / "split", steps=4), log=lambda _m: None)
    assert len((tmp_path / "split" / "metrics.jsonl").read_text().splitlines()) == 2
    resumed = pretrain(run_config(tone_folders[0], tmp_path / "split", steps=4), resume=True, log=lambda _m: None)
    straight = pretrain(run_config(tone_folders[0], tmp_path / "straight", steps=4), log=lambda _m: None)
    assert resumed.state.step == straight.state.step == 4
    for (k, a), b in zip(resumed.module.state_dict().items(), straight.module.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k


def test_resume_refuses_a_different_model_or_schedule(tone_folders, tmp_path):
    pretrain(run_config(tone_folders[0], tmp_path, "wave-spec", steps=1), log=lambda _m: None)
    with pytest.raises(MolsslError, match="model.variant: 'wave-spec' -> 'spec-spec'"):
        pretrain(run_config(tone_folders[0], tmp_path, "spec-spec", steps=1), resume=True, log=lambda _m: None)
    with pytest.raises(MolsslError, match="max_steps: 1 -> 2"):
        pretrain(run_config(tone_folders[0], tmp_path, "wave-spec", steps=2), resume=True, log=lambda _m: None)


def test_checkpoint_records_the_full_config_and_version(tone_folders, tmp_path):
    config = run_config(tone_folders[0], tmp_path, steps=1)
    pretrain(config, log=lambda _m: None)
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["molssl_version"] == molssl.__version__ and record["modality"] == "audio"
    assert set(record["model"]["augment"]) == {"mix_ratio", "time_mask_fraction", "freq_mask_bins", "freq_shift_bins"}
    assert record["preprocessing"] == 1 and record["warmup_fraction"] == 0.05
    saved = load_checkpoint(tmp_path / "checkpoint.pt")["config"]
    assert saved == record


def test_crop_longer_than_clips_is_rejected(tone_folders, tmp_path):
    with pytest.raises(ValueError, match="longer than the clips"):
        PretrainConfig(data=str(tone_folders[0]), out_dir=str(tmp_path), model=tiny_model_config(), clip_samples=100)
