"""Descriptor-prediction pre-training (PhysChem): robust targets, the loss, and its wiring into pretrain()."""
import json

import numpy as np
import pytest
import torch

from molssl.chem.data.descriptors import RDKIT2D_NAMES
from molssl.chem.data.store import build_store
from molssl.chem.nn.augment import MolecularAugmentation
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.nn.objectives import STORE_EXTRAS
from molssl.chem.nn.physchem import PhysChem, robust_statistics
from molssl.chem.serve.loading import resolve_encoder
from molssl.chem.tasks.pretrain import ENCODER_FILE, PretrainConfig, pretrain
from molssl.core.checkpoint import load_checkpoint
from training_helpers import pretrain_briefly, train_on

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)

@pytest.fixture
def store(tmp_path, small_smiles):
    path = tmp_path / "mols.smi"
    path.write_text("\n".join(small_smiles) + "\n")
    return build_store(path, extras=STORE_EXTRAS["physchem"], workers=1, progress=False, cache_dir=tmp_path / "c")


def _module(**kw) -> PhysChem:
    torch.manual_seed(0)
    return PhysChem(MolecularEncoder(TINY), MolecularAugmentation(), len(RDKIT2D_NAMES), **kw)


def test_robust_statistics_use_median_and_iqr_and_mark_constant_columns():
    values = np.array([[1.0, 5.0, 0.0, np.nan],
                       [2.0, 5.0, 0.0, np.nan],
                       [3.0, 5.0, 0.0, np.nan],
                       [4.0, 5.0, 9.0, np.nan],
                       [1000.0, 5.0, 0.0, np.nan]])
    centre, scale = robust_statistics(values)
    assert centre[0] == 3.0 and scale[0] == pytest.approx((4.0 - 2.0) / 1.349)  # the outlier moves neither
    assert scale[1] == 0.0 and centre[1] == 5.0  # never varies: left out
    assert scale[2] == pytest.approx(np.std(values[:, 2]))  # IQR 0 but not constant: the std
    assert scale[3] == 0.0 and centre[3] == 0.0  # never computed


def test_targets_are_clipped_and_unusable_entries_masked():
    module = PhysChem(MolecularEncoder(TINY), None, 3, clip=2.0)
    module.fit_statistics(np.array([[0.0, 1.0, 7.0], [1.0, 1.0, 7.0], [2.0, 1.0, 7.0], [3.0, 1.0, 7.0]]))
    target, mask = module.targets(torch.tensor([[1.5, 1.0, 7.0], [1e9, np.nan, 7.0], [np.nan, 1.0, 7.0]]))
    assert mask.tolist() == [[True, False, False], [True, False, False], [False, False, False]]
    assert target[0, 0] == 0.0 and target[1, 0] == 2.0  # median 1.5; a huge value is clipped
    assert torch.isfinite(target).all() and (target[~mask] == 0).all()


def test_training_before_statistics_or_without_descriptors_is_refused(store):
    batch = store.gather(np.arange(len(store)), ("rdkit2d",))
    with pytest.raises(RuntimeError, match="fit_statistics"):
        _module()(batch)
    module = _module()
    module.fit_statistics(store.extra("rdkit2d"))
    with pytest.raises(ValueError, match="rdkit2d"):
        module(store.gather(np.arange(len(store))))
    with pytest.raises(ValueError, match="augmentation"):
        PhysChem(MolecularEncoder(TINY), None, 3, augment=True)


@pytest.mark.parametrize("augment", [False, True])
def test_the_encoder_learns_to_predict_the_descriptors(store, augment):
    batch = store.gather(np.arange(len(store)), ("rdkit2d",))
    module = _module(augment=augment)
    assert module.fit_statistics(store.extra("rdkit2d")) > 50  # most of RDKit's descriptors vary over these molecules
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss, metrics = module(batch)
        optimizer.zero_grad()
        loss.backward()
        assert module.encoder.x_embedding1.weight.grad.abs().sum() > 0  # the loss reaches the graph encoder
        assert all(p.grad is None and not p.requires_grad for p in module.encoder.head.parameters())  # unused: frozen
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < (0.5 if not augment else 0.8) * np.mean(losses[:5])  # masked views are harder
    if not augment:
        assert metrics["r2"] > 0.5


def test_pretrain_with_physchem_saves_statistics_and_an_encoder_that_loads(tmp_path, small_smiles):
    corpus = tmp_path / "corpus.smi"
    corpus.write_text("\n".join(small_smiles * 4) + "\n")
    out = tmp_path / "run"
    lines: list[str] = []
    config = PretrainConfig(smiles=str(corpus), out=str(out), method="physchem", encoder=TINY, epochs=4, batch_size=8,
                            valid_fraction=0.2, checkpoint_every=2, log_every=1, progress=False, workers=1, lr=2e-3,
                            cache_dir=str(tmp_path / "c"))
    summary = pretrain(config, log=lines.append)
    assert any("descriptor targets:" in line for line in lines)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert summary["steps"] == len(losses) == 16 and losses[-1] < losses[0]
    model = load_checkpoint(out / "checkpoint.pt")["model"]
    assert (model["scale"] > 0).sum() > 50 and model["centre"].shape == (len(RDKIT2D_NAMES),)
    encoder, _ = resolve_encoder(out / ENCODER_FILE)  # the path fine-tuning's --pretrained takes
    assert encoder.config.emb_dim == 16


def test_a_killed_physchem_run_resumes_to_the_same_weights(tmp_path, small_smiles, killed_during_step):
    """A stopped descriptor-prediction run continues to the weights of one that ran straight through (targets,
    regression head and encoder alike)."""
    corpus = tmp_path / "corpus.smi"
    corpus.write_text("\n".join(small_smiles * 4) + "\n")

    def config(out, **kw):
        return PretrainConfig(smiles=str(corpus), out=str(tmp_path / out), method="physchem", encoder=TINY, epochs=2,
                              batch_size=8, valid_fraction=0.2, checkpoint_every=2, log_every=1, progress=False,
                              workers=1, device="cpu", cache_dir=str(tmp_path / "c"), **kw)

    pretrain(config("straight"), log=lambda _: None)
    with killed_during_step(4):  # dies during step 4; the last checkpoint was written after step 2
        pretrain(config("killed"), log=lambda _: None)
    pretrain(config("killed", resume=True), log=lambda _: None)
    a, b = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in ("straight", "killed"))
    assert a["state"]["step"] == b["state"]["step"] > 4
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, msg=key)


def test_physchem_ecfp_also_learns_the_substructure_bits(tmp_path, small_smiles):
    path = tmp_path / "mols.smi"
    path.write_text("\n".join(small_smiles) + "\n")
    store = build_store(path, extras=STORE_EXTRAS["physchem-ecfp"], workers=1, progress=False, cache_dir=tmp_path / "c")
    batch = store.gather(np.arange(len(store)), ("rdkit2d", "ecfp2048"))
    module = _module(n_bits=2048)
    module.fit_statistics(store.extra("rdkit2d"))
    with pytest.raises(ValueError, match="ecfp2048"):
        module(store.gather(np.arange(len(store)), ("rdkit2d",)))
    history = train_on(module, batch, steps=60, lr=3e-3)
    first = history[0][1]  # the loss from random weights
    loss, metrics = history[-1]
    assert loss.item() == pytest.approx((metrics["loss_descriptors"] + metrics["loss_bits"]).item())
    assert first["loss_bits"] > 0.6  # ~log 2 from random weights
    assert metrics["loss_bits"] < 0.5 * first["loss_bits"] and metrics["r2"] > 0.3
    bits = torch.from_numpy(np.unpackbits(np.asarray(store.extra("ecfp2048")), axis=1)).float()
    logits = module.bit_classifier(module.encoder.represent(batch))
    present = torch.sigmoid(logits)[bits == 1].mean()
    absent = torch.sigmoid(logits)[bits == 0].mean()
    assert present > absent + 0.3  # the bits of each molecule, not the base rate


def test_pretrain_with_physchem_ecfp_runs_and_keeps_both_heads_in_the_checkpoint(tmp_path, small_smiles):
    summary, records = pretrain_briefly(tmp_path, small_smiles, "physchem-ecfp", TINY)
    assert summary["steps"] == 8 and records and all("loss_bits" in r for r in records)
    model = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["model"]
    assert model["bit_classifier.2.weight"].shape[0] == 2048 and "regressor.2.weight" in model
