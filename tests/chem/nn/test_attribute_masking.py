"""Attribute masking (Hu et al. 2020): which atoms are masked, the loss, training, and its wiring into pretrain()."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from molssl.chem.data.descriptors import RDKIT2D_NAMES
from molssl.chem.data.featurize_rich import RICH
from molssl.chem.data.store import build_store
from molssl.chem.nn.attribute_masking import AttributeMasking, MaskedAttributes
from molssl.chem.nn.augment import MolecularAugmentation
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.nn.objectives import STORE_EXTRAS
from molssl.chem.nn.physchem import PhysChem
from molssl.chem.serve.loading import resolve_encoder
from molssl.chem.tasks.pretrain import ENCODER_FILE, PretrainConfig
from molssl.errors import MolsslError
from training_helpers import assert_learns_fresh_masks_with_a_frozen_readout, pretrain_briefly

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8, featurizer="rich")


@pytest.fixture
def store(tmp_path, small_smiles):
    path = tmp_path / "mols.smi"
    path.write_text("\n".join(small_smiles) + "\n")
    return build_store(path, extras=STORE_EXTRAS["physchem-attrmask"], featurizer="rich", workers=1, progress=False,
                       cache_dir=tmp_path / "c")


def test_mask_hides_every_field_of_the_chosen_atoms_only(store):
    batch = store.gather(np.arange(len(store)))
    task = MaskedAttributes(16, RICH.atom_vocab, RICH.atom_mask, rate=0.25)
    view, atoms = task.mask(batch, torch.Generator().manual_seed(0))
    sizes = batch.atoms_per_graph()
    chosen = torch.bincount(batch.batch[atoms], minlength=batch.num_graphs)
    assert chosen.tolist() == torch.clamp(torch.floor(sizes * 0.25).long(), min=1).tolist()
    assert (view.x[atoms] == torch.tensor(RICH.atom_mask)).all()
    assert torch.equal(view.x[~atoms], batch.x[~atoms])
    assert not (batch.x[atoms] == torch.tensor(RICH.atom_mask)).all(dim=1).any()  # the originals were real atoms


def test_loss_is_the_mean_cross_entropy_over_masked_atoms_and_fields():
    torch.manual_seed(0)
    vocab, nodes = (4, 3), torch.randn(6, 5)
    x = torch.tensor([[0, 1], [3, 2], [1, 0], [2, 2], [0, 0], [3, 1]])
    atoms = torch.tensor([True, False, True, True, False, False])
    task = MaskedAttributes(5, vocab, (3, 2), rate=0.5)
    loss, accuracy = task.loss(nodes, x, atoms)
    logits = task.classifier(nodes[atoms])
    expected = (F.cross_entropy(logits[:, :4], x[atoms, 0], reduction="sum")
                + F.cross_entropy(logits[:, 4:], x[atoms, 1], reduction="sum")) / (3 * 2)
    torch.testing.assert_close(loss, expected)
    assert accuracy.item() == pytest.approx((logits[:, :4].argmax(1) == x[atoms, 0]).float().mean().item())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="rate"):
        MaskedAttributes(8, (3, 2), (2, 1), rate=0.0)
    with pytest.raises(ValueError, match="mask values"):
        MaskedAttributes(8, (3, 2), (2,), rate=0.2)
    with pytest.raises(MolsslError, match="--mask-rate"):
        PretrainConfig(smiles="x", out="y", method="attrmask", mask_rate=0.0)
    with pytest.raises(ValueError, match="mask_attributes"):
        PhysChem(MolecularEncoder(TINY), MolecularAugmentation(), 3, augment=True, mask_attributes=True)


def test_training_learns_the_masked_atoms_and_leaves_the_graph_readout_alone(store):
    torch.manual_seed(0)
    batch = store.gather(np.arange(len(store)))
    assert_learns_fresh_masks_with_a_frozen_readout(AttributeMasking(MolecularEncoder(TINY), 0.25, RICH.atom_mask), batch)


def test_physchem_attrmask_adds_the_node_loss_to_the_descriptor_loss(store):
    torch.manual_seed(0)
    batch = store.gather(np.arange(len(store)), ("rdkit2d",))
    module = PhysChem(MolecularEncoder(TINY), MolecularAugmentation(mask_values=RICH.atom_mask), len(RDKIT2D_NAMES),
                      mask_attributes=True)
    module.fit_statistics(store.extra("rdkit2d"))
    loss, metrics = module(batch)
    assert loss.item() == pytest.approx((metrics["loss_descriptors"] + metrics["loss_attributes"]).item())
    assert metrics["loss_attributes"] > 1.0  # random weights: about the log of the vocabulary sizes
    loss.backward()
    assert module.attributes.classifier.weight.grad.abs().sum() > 0
    assert module.encoder.feat_lin.weight.grad.abs().sum() > 0  # the descriptors train the readout


@pytest.mark.parametrize("method", ["attrmask", "physchem-attrmask"])
def test_pretrain_with_masking_saves_an_encoder_that_loads(method, tmp_path, small_smiles):
    summary, records = pretrain_briefly(tmp_path, small_smiles, method, TINY)
    assert summary["steps"] == 8 and records and all(0.0 <= r["accuracy"] <= 1.0 for r in records)
    encoder, _ = resolve_encoder(str(tmp_path / "run" / ENCODER_FILE))
    assert encoder.config.featurizer == "rich"


def test_cli_refuses_a_zero_mask_rate_for_masking_in_one_line(tmp_path, smiles_file):
    result = subprocess.run([sys.executable, "-m", "molssl", "pretrain", "--smiles", str(smiles_file), "--out",
                             str(tmp_path / "run"), "--method", "attrmask", "--mask-rate", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --mask-rate must lie in (0, 1] for --method attrmask")
    assert not (tmp_path / "run").exists()  # refused before any work
