"""iMolCLR losses: weighted NT-Xent and fragment NT-Xent against naive loops, on real fingerprints."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from rdkit import Chem

from molssl.chem.data.descriptors import ecfp_bits
from molssl.chem.nn.similarity import negative_weights, tanimoto_matrix
from molssl.core.losses import multi_positive_nt_xent, nt_xent

SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "O=C(O)c1ccccc1O",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "CC(=O)Nc1ccc(O)cc1",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "CC(=O)Nc1ccc(OC)cc1",
]


def _tanimoto():
    packed = np.stack([ecfp_bits(Chem.MolFromSmiles(s)) for s in SMILES])
    return tanimoto_matrix(torch.from_numpy(packed), dtype=torch.float64)


def _views(n, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=torch.float64), torch.randn(n, dim, generator=g, dtype=torch.float64)


def _naive_weighted(z1, z2, w, t, mode):
    """Loop over the 2N anchors; view k of molecule k % N."""
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        cos = lambda a, b: float(F.cosine_similarity(z[a], z[b], dim=0))
        numerator = math.exp(cos(i, pos) / t)
        denominator = numerator
        for k in range(2 * n):
            if k in (i, pos):
                continue
            wik = float(w[i % n, k % n])
            denominator += wik * math.exp(cos(i, k) / t) if mode == "denominator" else math.exp(wik * cos(i, k) / t)
        total += -math.log(numerator / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("mode", ["denominator", "similarity"])
@pytest.mark.parametrize("lambda1", [0.5, 1.0])
def test_weighted_nt_xent_equals_naive_loop(mode, lambda1):
    tanimoto = _tanimoto()
    assert 0.3 < tanimoto[0, 1] < 1 and tanimoto[3, 5] > 0.3  # real near-neighbours in the batch
    z1, z2 = _views(len(SMILES))
    w = negative_weights(tanimoto, lambda1)
    ours = nt_xent(z1, z2, 0.1, negative_weights=w, weight_mode=mode)
    assert ours.item() == pytest.approx(_naive_weighted(z1, z2, w, 0.1, mode), rel=1e-6)


def test_weighted_loss_differs_from_plain_and_lambda1_zero_is_plain_nt_xent():
    z1, z2 = _views(len(SMILES), seed=1)
    plain = nt_xent(z1, z2, 0.1)
    for mode in ("denominator", "similarity"):
        zero = nt_xent(z1, z2, 0.1, negative_weights=negative_weights(_tanimoto(), 0.0), weight_mode=mode)
        torch.testing.assert_close(zero, plain, rtol=1e-6, atol=1e-7)
        half = nt_xent(z1, z2, 0.1, negative_weights=negative_weights(_tanimoto(), 0.5), weight_mode=mode)
        assert abs(half.item() - plain.item()) > 1e-3
    # down-weighting negatives in the denominator can only lower the loss
    assert nt_xent(z1, z2, 0.1, negative_weights=negative_weights(_tanimoto(), 0.5)) < plain
    with pytest.raises(ValueError, match="weight_mode"):
        nt_xent(z1, z2, 0.1, negative_weights=torch.ones(6, 6), weight_mode="exp")


def _naive_multi_positive(anchors, items, owner, t):
    per_anchor = []
    for a in range(anchors.shape[0]):
        positives = [f for f in range(items.shape[0]) if owner[f] == a]
        if not positives:
            continue
        sims = [float(F.cosine_similarity(anchors[a], items[f], dim=0)) / t for f in range(items.shape[0])]
        log_denominator = math.log(sum(math.exp(s) for s in sims))
        per_anchor.append(-sum(sims[p] - log_denominator for p in positives) / len(positives))
    return sum(per_anchor) / len(per_anchor)


def test_fragment_loss_equals_naive_loop():
    g = torch.Generator().manual_seed(3)
    anchors = torch.randn(5, 8, generator=g, dtype=torch.float64)
    items = torch.randn(9, 8, generator=g, dtype=torch.float64)
    owner = torch.tensor([0, 0, 0, 1, 2, 2, 4, 4, 4])  # molecule 3 has no fragment: no anchor term
    ours = multi_positive_nt_xent(anchors, items, owner, 0.1)
    assert ours.item() == pytest.approx(_naive_multi_positive(anchors, items, owner, 0.1), rel=1e-6)


def test_fragment_loss_rewards_fragments_close_to_their_molecule_and_has_gradients():
    anchors = torch.eye(4, 8, dtype=torch.float64)
    owner = torch.tensor([0, 0, 1, 2, 3])
    aligned = anchors[owner] + 0.01
    shuffled = anchors[torch.tensor([1, 2, 3, 0, 0])] + 0.01
    assert multi_positive_nt_xent(anchors, aligned, owner, 0.1) < multi_positive_nt_xent(anchors, shuffled, owner, 0.1)
    items = shuffled.clone().requires_grad_(True)
    multi_positive_nt_xent(anchors, items, owner, 0.1).backward()
    assert items.grad.abs().sum() > 0


def test_fragment_loss_without_fragments_is_zero_and_bad_owner_is_rejected():
    anchors = torch.randn(3, 4, requires_grad=True)
    empty = multi_positive_nt_xent(anchors, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert empty.item() == 0.0
    empty.backward()  # attached to the graph: summing it into a total loss is safe
    with pytest.raises(ValueError, match="owner indices"):
        multi_positive_nt_xent(anchors, torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="owner must be"):
        multi_positive_nt_xent(anchors, torch.randn(2, 4), torch.tensor([0.0, 1.0]))
