"""iMolCLR training module and its wiring into the store, pretrain() and the CLI."""
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from molssl.chem.nn.augment import MolecularAugmentation
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.data.featurize import smiles_to_graph
from molssl.chem.data.batch import select_graphs
from molssl.chem.nn.objectives import IMolCLR
from molssl.chem.nn.objectives import STORE_EXTRAS, MolCLR
from molssl.chem.tasks.pretrain import PretrainConfig, build_objective, pretrain
from molssl.chem.nn.similarity import negative_weights, tanimoto_matrix
from molssl.chem.data.batch import graphs_to_arrays
from molssl.chem.data.store import build_store
from molssl.core.losses import multi_positive_nt_xent, nt_xent

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)
SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "CC(=O)Nc1ccc(OC)cc1", "c1ccccc1",
    "Clc1ccc(cc1)C(c1ccccc1)N1CCN(CC1)CCOCC(=O)O", "CCO", "COc1ccc2[nH]cc(CCN)c2c1",
    "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1", "FC(F)(F)c1ccc(Oc2ccccc2)cc1", "CN1CCC[C@H]1c1cccnc1",
]


@pytest.fixture
def batch(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_text("\n".join(SMILES) + "\n")
    store = build_store(path, extras=STORE_EXTRAS["imolclr"], workers=1, progress=False, cache_dir=tmp_path / "c")
    return store.gather(np.arange(len(SMILES)))


def _module(cls=IMolCLR, **kw):
    torch.manual_seed(0)
    return cls(MolecularEncoder(TINY), MolecularAugmentation(), 0.1, **kw)


def test_select_graphs_equals_gathering_the_kept_graphs():
    graphs = [smiles_to_graph(s) for s in SMILES]
    full = graphs_to_arrays(graphs).gather(np.arange(len(graphs)))
    keep = torch.tensor([i % 3 != 1 for i in range(len(graphs))])
    ours = select_graphs(full, keep)
    expected = graphs_to_arrays([g for g, k in zip(graphs, keep) if k]).gather(np.arange(int(keep.sum())))
    for name in ("x", "edge_index", "edge_attr", "batch", "ptr"):
        assert torch.equal(getattr(ours, name), getattr(expected, name)), name
    assert torch.equal(ours.index, full.index[keep])


def test_store_batch_carries_fingerprints_and_fragments(batch):
    assert batch.ecfp.shape == (len(SMILES), 128) and batch.ecfp.dtype == torch.uint8
    counts = torch.bincount(batch.fragment_owner, minlength=len(SMILES))
    assert counts[3] == 0 and counts[5] == 0  # benzene and ethanol: BRICS does not split them
    assert counts.sum() == batch.fragments.num_graphs and (counts > 1).sum() >= 4


def test_with_both_lambdas_zero_it_is_molclr(batch):
    molclr, imolclr = _module(MolCLR), _module(lambda1=0.0, lambda2=0.0)
    torch.manual_seed(1)
    expected = molclr(batch)
    torch.manual_seed(1)
    loss, metrics = imolclr(batch)
    torch.testing.assert_close(loss, expected)
    assert set(metrics) == {"loss_mol"}


def test_loss_is_weighted_molecule_loss_plus_lambda2_fragment_loss(batch):
    module = _module(lambda1=0.5, lambda2=0.7, max_fragments=0)
    torch.manual_seed(2)
    loss, metrics = module(batch)
    torch.manual_seed(2)
    _, z1, _, z2 = module.views(batch)
    weights = negative_weights(tanimoto_matrix(batch.ecfp), 0.5)
    loss_mol = nt_xent(z1, z2, 0.1, negative_weights=weights)
    _, zf = module.encoder(batch.fragments)
    owner = batch.fragment_owner
    loss_frag = 0.5 * (multi_positive_nt_xent(z1, zf, owner, 0.1) + multi_positive_nt_xent(z2, zf, owner, 0.1))
    torch.testing.assert_close(metrics["loss_mol"], loss_mol.detach())
    torch.testing.assert_close(metrics["loss_frag"], loss_frag.detach())
    torch.testing.assert_close(loss, loss_mol + 0.7 * loss_frag)
    assert loss_mol < nt_xent(z1, z2, 0.1)  # the faulty-negative weights are in effect
    loss.backward()
    assert all(p.grad is not None for p in module.encoder.parameters())


def test_max_fragments_caps_the_fragments_encoded_per_molecule(batch):
    module = _module(max_fragments=1)
    seen = []
    module.encoder.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].num_graphs))
    module(batch)
    has_fragments = int((torch.bincount(batch.fragment_owner, minlength=len(SMILES)) > 0).sum())
    assert seen == [len(SMILES), len(SMILES), has_fragments]


def test_missing_extras_and_bad_options_are_clear_errors(batch):
    with pytest.raises(ValueError, match="'ecfp' extra"):
        _module(lambda2=0.0)(batch.with_(ecfp=None))
    with pytest.raises(ValueError, match="'fragments' extra"):
        _module(lambda1=0.0)(batch.with_(fragments=None, fragment_owner=None))
    with pytest.raises(ValueError, match="lambda1"):
        _module(lambda1=1.5)
    with pytest.raises(ValueError, match="weight_mode"):
        _module(weight_mode="exp")


def test_pretrain_and_cli_run_imolclr(tmp_path):
    from molssl.cli.main import app

    corpus = tmp_path / "corpus.smi"
    corpus.write_text("\n".join(SMILES * 3) + "\n")
    config = PretrainConfig(smiles=str(corpus), out=str(tmp_path / "run"), method="imolclr", encoder=TINY,
                            batch_size=8, max_steps=2, valid_fraction=0.2, log_every=1, progress=False, workers=1,
                            method_options={"lambda1": 0.3, "lambda2": 0.2})
    assert isinstance(build_objective(config), IMolCLR) and build_objective(config).lambda2 == 0.2
    summary = pretrain(config, log=lambda _: None)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert summary["steps"] == 2 and all("loss_frag" in r for r in records if "loss" in r)

    runner = CliRunner()
    args = ["pretrain", "--smiles", str(corpus), "--num-layers", "2", "--emb-dim", "16", "--feat-dim", "16",
            "--batch-size", "8", "--epochs", "1", "--workers", "1", "--valid-fraction", "0.2"]
    result = runner.invoke(app, args + ["--out", str(tmp_path / "cli"), "--method", "imolclr", "--lambda1", "0.5"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert saved["method"] == "imolclr" and saved["method_options"] == {"lambda1": 0.5}
    result = runner.invoke(app, args + ["--out", str(tmp_path / "bad"), "--lambda2", "0.5"])
    assert result.exit_code != 0 and "imolclr only" in result.output


def test_fragment_pass_leaves_batchnorm_running_statistics_unchanged(batch):
    """Issue 21.1: fragments are normalized with their own batch statistics, but the running mean and variance
    (what evaluation and fine-tuning use) describe the molecule views only."""
    module = _module(max_fragments=0).train()
    _, z1, _, z2 = module.views(batch)
    norms = [m for m in module.encoder.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    before = [(m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked)) for m in norms]
    loss = module.fragment_loss(z1, z2, batch)
    assert loss.requires_grad and torch.isfinite(loss)
    for m, (mean, var, tracked) in zip(norms, before):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert int(m.num_batches_tracked) == tracked and m.momentum == 0.1  # restored after the pass
    # the molecule views themselves still update the statistics
    module.views(batch)
    assert not torch.equal(norms[0].running_mean, before[0][0])
