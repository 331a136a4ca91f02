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
