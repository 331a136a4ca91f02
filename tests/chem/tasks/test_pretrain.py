import json

import pytest
import torch

from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.tasks.pretrain import ENCODER_FILE, PretrainConfig, pretrain
from molssl.core.checkpoint import load_checkpoint
from molssl.errors import InvalidSmilesError, MolsslError

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)


@pytest.fixture
def corpus(tmp_path, small_smiles):
    path = tmp_path / "corpus.smi"
    path.write_text("\n".join(small_smiles * 4) + "\n")
    return path


def _config(corpus, out, **kw):
    base = dict(smiles=str(corpus), out=str(out), encoder=TINY, epochs=3, batch_size=8, valid_fraction=0.2,
                checkpoint_every=2, log_every=1, progress=False, workers=1, seed=3)
    base.update(kw)
    return PretrainConfig(**base)


def test_pretrain_writes_run_directory_and_learns(corpus, tmp_path):
    out = tmp_path / "run"
    summary = pretrain(_config(corpus, out, epochs=8, lr=2e-3), log=lambda _: None)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    val = [r["val_loss"] for r in records if "val_loss" in r]
    assert summary["steps"] == len(losses) == 8 * 4  # 39 train molecules // 8 = 4 steps per epoch
    assert len(val) == 8
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4  # training loss goes down
    saved = torch.load(out / ENCODER_FILE, weights_only=False)
    assert saved["encoder_config"]["emb_dim"] == 16 and "x_embedding1.weight" in saved["state_dict"]
    assert json.loads((out / "config.json").read_text())["batch_size"] == 8


def test_killed_run_resumes_to_the_same_weights(corpus, tmp_path, killed_during_step):
    # on the CPU, where a run is bitwise reproducible: on an H200 two uninterrupted runs with one seed already
    # differed by up to 2.7e-3 (fp32) after 12 steps (atomic scatter-adds), so equality is not a CUDA property
    def on_cpu(out, **kw):
        return _config(corpus, out, device="cpu", **kw)

    straight = tmp_path / "straight"
    pretrain(on_cpu(straight), log=lambda _: None)

    killed = tmp_path / "killed"
    with killed_during_step(6):  # dies during step 6; the last checkpoint was written after step 4
        pretrain(on_cpu(killed), log=lambda _: None)
    assert load_checkpoint(killed / "checkpoint.pt")["state"]["step"] == 4
    with pytest.raises(MolsslError, match="--resume"):
        pretrain(on_cpu(killed), log=lambda _: None)
    earlier = load_checkpoint(killed / "checkpoint.pt")["state"]
    summary = pretrain(on_cpu(killed, resume=True), log=lambda _: None)
    # the budget beside the encoder covers both sessions
    assert summary["cpu_hours"] * 3600 > earlier["cpu_seconds"] > 0 and summary["seconds"] > earlier["seconds"]
    assert summary["molecules_seen"] == 12 * 8

    a = load_checkpoint(straight / "checkpoint.pt")
    b = load_checkpoint(killed / "checkpoint.pt")
    assert a["state"]["step"] == b["state"]["step"] == 12
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, msg=key)


def test_invalid_smiles_stop_the_run_unless_skipped(tmp_path, small_smiles):
    path = tmp_path / "bad.smi"
    path.write_text("\n".join(small_smiles * 2 + ["C1CC"]) + "\n")
    with pytest.raises(InvalidSmilesError, match="line 25: 'C1CC'"):
        pretrain(_config(path, tmp_path / "r1"), log=lambda _: None)
    pretrain(_config(path, tmp_path / "r2", skip_invalid=True, epochs=1), log=lambda _: None)
    assert "C1CC" in (tmp_path / "r2" / "rejected.csv").read_text()


def test_bf16_autocast_step_runs_on_cpu(corpus, tmp_path):
    summary = pretrain(_config(corpus, tmp_path / "bf16", epochs=1, precision="bf16", device="cpu"),
                       log=lambda _: None)
    assert summary["final_loss"] == pytest.approx(summary["final_loss"]) and summary["steps"] == 4


def test_a_run_written_before_versions_were_recorded_resumes_with_its_defaults(corpus, tmp_path, killed_during_step):
    """Issue 21.2: an older checkpoint lacks fields that exist now (featurizer, max_atoms, input checksum, the
    version); resuming fills them with the defaults of the version that wrote it and says so once."""
    from molssl.core.checkpoint import atomic_save

    out = tmp_path / "old"
    with killed_during_step(3):  # after the checkpoint of step 2
        pretrain(_config(corpus, out, epochs=1, max_steps=3, checkpoint_every=2), log=lambda _: None)
    ckpt = load_checkpoint(out / "checkpoint.pt")
    old = ckpt["config"]["pretrain"]
    for key in ("max_atoms", "input_sha256"):
        del old[key]
    del old["encoder"]["featurizer"]
    old["precision"] = "fp32"
    ckpt["config"] = {"pretrain": old}  # no molssl_version: written before versions were recorded
    atomic_save(ckpt, out / "checkpoint.pt")
    messages = []
    summary = pretrain(_config(corpus, out, epochs=1, max_steps=3, resume=True), log=messages.append)
    assert summary["steps"] == 3
    notes = [m for m in messages if "did not record its version" in m]
    assert len(notes) == 1 and "encoder.featurizer='molclr'" in notes[0] and "max_atoms=1000" in notes[0]


def test_resume_with_another_embedding_size_or_corpus_is_refused_before_anything_is_written(corpus, tmp_path):
    out = tmp_path / "run"
    pretrain(_config(corpus, out, epochs=1, max_steps=2), log=lambda _: None)
    before = (out / "config.json").read_text()
    with pytest.raises(MolsslError, match=r"encoder\.emb_dim: 16 -> 32"):
        pretrain(_config(corpus, out, epochs=1, max_steps=2, resume=True,
                         encoder=EncoderConfig(num_layers=2, emb_dim=32, feat_dim=16, proj_dim=8)), log=lambda _: None)
    other = tmp_path / "other.smi"
    other.write_text("CCO\nCCN\n" * 30)
    with pytest.raises(MolsslError, match="input_sha256"):
        pretrain(_config(other, out, epochs=1, max_steps=2, resume=True), log=lambda _: None)
    assert (out / "config.json").read_text() == before


def _parameters(path):
    saved = torch.load(path, weights_only=False)
    buffers = ("running_mean", "running_var", "num_batches_tracked")  # BatchNorm statistics move at any lr
    return {k: v for k, v in saved["state_dict"].items() if not k.endswith(buffers)}, saved


def test_continued_pretraining_starts_from_the_given_encoder(corpus, tmp_path):
    first = tmp_path / "attrmask"
    pretrain(_config(corpus, first, method="attrmask", epochs=1, max_steps=3, lr=1e-2), log=lambda _: None)
    start, saved = _parameters(first / ENCODER_FILE)
    messages = []
    # an lr so small that Adam's steps (about lr each) leave the weights where they started
    pretrain(_config(corpus, tmp_path / "then-molclr", epochs=1, max_steps=2, lr=1e-12, init_encoder=str(first)),
             log=messages.append)
    continued, _ = _parameters(tmp_path / "then-molclr" / ENCODER_FILE)
    fresh_run = tmp_path / "fresh"
    pretrain(_config(corpus, fresh_run, epochs=1, max_steps=2, lr=1e-12), log=lambda _: None)
    fresh, _ = _parameters(fresh_run / ENCODER_FILE)
    for key, value in start.items():
        torch.testing.assert_close(continued[key], value, atol=1e-8, rtol=0, msg=key)
    assert any(not torch.allclose(fresh[k], v) for k, v in start.items())  # without it the run starts elsewhere
    recorded = json.loads((tmp_path / "then-molclr" / "config.json").read_text())
    assert recorded["init_encoder"] == str(first) and recorded["init_encoder_digest"] == saved["digest"]
    assert any(f"starting from the weights of {first / ENCODER_FILE}" in m for m in messages)


def test_continued_pretraining_refuses_another_architecture_before_writing(corpus, tmp_path):
    first = tmp_path / "first"
    pretrain(_config(corpus, first, epochs=1, max_steps=1), log=lambda _: None)
    wider = EncoderConfig(num_layers=2, emb_dim=32, feat_dim=16, proj_dim=8)
    with pytest.raises(MolsslError, match=r"another architecture: emb_dim 16 \(this run: 32\)"):
        pretrain(_config(corpus, tmp_path / "second", encoder=wider, init_encoder=str(first)), log=lambda _: None)
    assert not (tmp_path / "second").exists()
    with pytest.raises(MolsslError, match="no-such"):
        pretrain(_config(corpus, tmp_path / "third", init_encoder=str(tmp_path / "no-such")), log=lambda _: None)


def test_a_resumed_continued_run_keeps_where_it_started(corpus, tmp_path, killed_during_step):
    first = tmp_path / "first"
    pretrain(_config(corpus, first, epochs=1, max_steps=1), log=lambda _: None)
    out = tmp_path / "continued"
    with killed_during_step(3):  # after the checkpoint of step 2
        pretrain(_config(corpus, out, epochs=1, max_steps=4, init_encoder=str(first)), log=lambda _: None)
    digest = json.loads((out / "config.json").read_text())["init_encoder_digest"]
    (first / ENCODER_FILE).unlink()  # the checkpoint, not the starting encoder, is what a resumed run continues
    summary = pretrain(_config(corpus, out, epochs=1, max_steps=4, resume=True), log=lambda _: None)
    recorded = json.loads((out / "config.json").read_text())
    assert summary["steps"] == 4 and recorded["init_encoder"] == str(first) and recorded["init_encoder_digest"] == digest
