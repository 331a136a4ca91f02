"""GIN layers once per atom environment (molssl.chem.nn.environments) against the per-atom layers."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

import molssl.chem.nn.encoders as encoders
from molssl.chem.data.featurizers import get_featurizer
from molssl.chem.data.store import build_store
from molssl.chem.nn.augment import MolecularAugmentation
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder, per_atom_layers
from molssl.chem.nn.environments import refine, row_ids, weighted_batch_norm


def test_refine_tells_bond_codes_and_neighbour_multisets_apart():
    # atoms 0-1 joined by code 0, 2-3 by code 1, atom 4 bonded to 5 and 6 by code 0; all of one kind
    pairs = [(0, 1, 0), (2, 3, 1), (4, 5, 0), (4, 6, 0)]
    src = torch.tensor([a for a, b, _ in pairs] + [b for a, b, _ in pairs])
    dst = torch.tensor([b for a, b, _ in pairs] + [a for a, b, _ in pairs])
    codes = torch.tensor([c for *_, c in pairs] * 2)
    envs = refine(torch.zeros(7, dtype=torch.long), src, dst, codes, n_codes=2)
    e = envs.of_atom.tolist()
    assert e[0] == e[1] == e[5] == e[6] and e[2] == e[3] and len({e[0], e[2], e[4]}) == 3
    assert envs.counts.tolist() == [sum(x == k for x in e) for k in range(3)]
    assert all(envs.of_atom[r] == k and r == e.index(k) for k, r in enumerate(envs.representatives.tolist()))


@pytest.mark.parametrize("n, width, values", [(0, 3, 1), (1, 1, 1), (500, 1, 7), (2000, 6, 3), (3000, 4, 40)])
def test_row_ids_number_rows_as_unique_dim_does(n, width, values):
    rows = torch.randint(-1, values, (n, width), generator=torch.Generator().manual_seed(n))
    assert torch.equal(row_ids(rows), torch.unique(rows, dim=0, return_inverse=True)[1])


@pytest.mark.parametrize("momentum, affine", [(0.1, True), (None, True), (0.1, False)])
def test_weighted_batch_norm_equals_batch_norm_on_the_repeated_rows(momentum, affine):
    """Outputs, gradients (of the rows, weight and bias) and running statistics."""
    generator = torch.Generator().manual_seed(0)
    rows = torch.randn(5, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    counts = torch.tensor([3, 1, 7, 2, 1])
    norm = nn.BatchNorm1d(4, momentum=momentum, affine=affine).double()
    if affine:
        nn.init.normal_(norm.weight), nn.init.normal_(norm.bias)
    reference = copy.deepcopy(norm)
    for _ in range(2):  # twice: the running statistics' update is checked too
        out = weighted_batch_norm(norm, rows, counts)
        expected = reference(rows.repeat_interleave(counts, dim=0))
        torch.testing.assert_close(out.repeat_interleave(counts, dim=0), expected)
    upstream = torch.randn(expected.shape, generator=generator, dtype=torch.float64)
    grads = torch.autograd.grad(out.repeat_interleave(counts, dim=0), [rows, *norm.parameters()], upstream)
    expected_grads = torch.autograd.grad(expected, [rows, *reference.parameters()], upstream)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(norm.running_mean, reference.running_mean)
    torch.testing.assert_close(norm.running_var, reference.running_var)
    assert norm.num_batches_tracked == reference.num_batches_tracked == 2
    norm.eval(), reference.eval()
    torch.testing.assert_close(weighted_batch_norm(norm, rows, counts), reference(rows))


@pytest.mark.parametrize("featurizer", ["molclr", "rich"])
def test_layers_by_environment_equal_the_per_atom_layers(smiles_file, featurizer):
    """Outputs, gradients and BatchNorm's running statistics, on a MolCLR view (masked atoms, deleted bonds), in
    training; outputs in evaluation."""
    store = build_store(smiles_file, progress=False, featurizer=featurizer)
    view = MolecularAugmentation(mask_values=get_featurizer(featurizer).atom_mask)
    batch = view(store.gather(np.arange(len(store))), torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = MolecularEncoder(EncoderConfig(num_layers=3, emb_dim=32, feat_dim=24, proj_dim=12,
                                           featurizer=featurizer)).train()
    weights = torch.randn(batch.num_graphs, 24)
    results = []
    for by_environment in (True, False):
        copy_ = copy.deepcopy(model)
        with per_atom_layers() if not by_environment else torch.enable_grad():
            h = copy_.represent(batch)
            (h * weights).sum().backward()
            copy_.eval()
            with torch.no_grad():
                h_eval = copy_.represent(batch)
        results.append((h.detach(), h_eval, copy_))
    (h_env, eval_env, env), (h_atoms, eval_atoms, atoms) = results
    torch.testing.assert_close(h_env, h_atoms, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(eval_env, eval_atoms, rtol=1e-5, atol=1e-5)
    grads_env = {name: p.grad for name, p in env.named_parameters() if p.grad is not None}
    grads_atoms = {name: p.grad for name, p in atoms.named_parameters() if p.grad is not None}
    assert grads_env.keys() == grads_atoms.keys() and "gnns.2.mlp.0.weight" in grads_env
    for name in grads_atoms:
        # as in tests/chem/nn/test_encoders.py: fp32 round-off through BatchNorm, on gradients of order 10
        torch.testing.assert_close(grads_env[name], grads_atoms[name], rtol=1e-4, atol=2e-4, msg=name)
    for (name, a), (_, b) in zip(env.named_buffers(), atoms.named_buffers()):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-5, atol=1e-6, msg=name)


def test_dropout_in_training_keeps_the_per_atom_layers(smiles_file, monkeypatch):
    batch = build_store(smiles_file, progress=False).gather(np.arange(4))
    used = []
    original = MolecularEncoder._node_embeddings_by_environment
    monkeypatch.setattr(MolecularEncoder, "_node_embeddings_by_environment",
                        lambda self, b: used.append(self.training) or original(self, b))
    model = MolecularEncoder(EncoderConfig(num_layers=2, emb_dim=16, dropout=0.3))
    model.train().represent(batch)
    assert used == []
    model.eval().represent(batch)
    assert used == [False]
    with per_atom_layers():
        model.represent(batch)
    assert used == [False] and encoders._BY_ENVIRONMENT


def test_only_plain_batch_norm_or_none_runs_per_environment(smiles_file):
    """Identity (no normalization) runs per environment and gives the per-atom result; another normalization module
    (here SyncBatchNorm, whose statistics span processes) keeps the per-atom layers."""
    batch = build_store(smiles_file, progress=False).gather(np.arange(4))
    torch.manual_seed(0)
    model = MolecularEncoder(EncoderConfig(num_layers=2, emb_dim=16))
    model.batch_norms = nn.ModuleList(nn.Identity() for _ in model.batch_norms)
    with per_atom_layers():
        expected = model.represent(batch)
    torch.testing.assert_close(model.represent(batch), expected, rtol=1e-5, atol=1e-6)
    from molssl.chem.nn.environments import counts_apply_to
    assert counts_apply_to(nn.BatchNorm1d(4)) and counts_apply_to(nn.Identity())
    assert not counts_apply_to(nn.SyncBatchNorm(4)) and not counts_apply_to(nn.LayerNorm(4))
