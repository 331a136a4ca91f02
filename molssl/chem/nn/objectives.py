"""Pre-training objectives on molecular graphs: MolCLR and iMolCLR side by side (descriptor prediction,
:mod:`molssl.chem.nn.physchem`, attribute masking, :mod:`molssl.chem.nn.attribute_masking`, GraphMAE,
:mod:`molssl.chem.nn.graphmae`, and context prediction, :mod:`molssl.chem.nn.context_prediction`, are
registered here too).

**MolCLR** (Wang, Wang, Cao & Barati Farimani, Nat. Mach. Intell. 4, 279 (2022)): two independently
augmented views of each molecule, NT-Xent (temperature 0.1) between their projections.

**iMolCLR** (Wang, Magar, Liang and Barati Farimani, "Improving Molecular Contrastive Learning via
Faulty Negative Mitigation and Decomposed Fragment Contrast", J. Chem. Inf. Model. 62, 2713 (2022);
reference code github.com/yuyangw/iMolCLR). Total loss ``L = L_mol + lambda2 * L_frag``:

- ``L_mol``: NT-Xent between two augmented views in which each negative pair (i, k) is weighted
  by ``w_ik = 1 - lambda1 * Tanimoto(M_i, M_k)`` inside the denominator
  (:func:`molssl.core.losses.nt_xent`, ``weight_mode="denominator"``); ``weight_mode="similarity"``
  scales the cosine instead, as the reference code does. Defaults lambda1 = lambda2 = 0.5 (the
  reference ``config.yaml``). Fingerprints are ECFP4 bits from the store, Tanimoto on the device
  (:mod:`molssl.chem.nn.similarity`).
- ``L_frag``: each molecule's view projections are anchors, the projections of its own BRICS
  fragments (:mod:`molssl.chem.data.fragments`, encoded by the same encoder and head) are its positives
  and the other molecules' fragments its negatives (:func:`molssl.core.losses.multi_positive_nt_xent`),
  averaged over the two views. Molecules with no fragment (BRICS does not split them, or every piece
  has 3 atoms or fewer) are not anchors, as in the reference code where they contribute no fragment.
  The reference code instead pools each fragment's atoms inside the two augmented molecule graphs and
  runs plain NT-Xent between the two views' fragment embeddings (same fragment = positive, every
  other fragment, of the same molecule or not, = negative).

The fragment graphs go through the encoder with its BatchNorm running statistics frozen
(:func:`frozen_batchnorm_statistics`): fragments are normalized with their own batch statistics,
as before, but the running mean and variance that evaluation and fine-tuning use describe whole
molecules only (mixing them made the eval-mode validation loss about twice the training loss).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from torch import Tensor, nn

from molssl.chem.data.batch import GraphBatch, select_graphs
from molssl.chem.data.extras import get_extra
from molssl.chem.nn.attribute_masking import build_attribute_masking
from molssl.chem.nn.augment import MolecularAugmentation, random_rank_in_groups
from molssl.chem.nn.context_prediction import build_context_prediction
from molssl.chem.nn.graphmae import build_graphmae
from molssl.chem.nn.encoders import MolecularEncoder
from molssl.chem.nn.physchem import BITS_EXTRA, DESCRIPTOR_EXTRA, PhysChem
from molssl.chem.nn.similarity import DEFAULT_LAMBDA1, negative_weights, tanimoto_matrix
from molssl.core import distributed as dist
from molssl.core.losses import NEGATIVE_WEIGHT_MODES, multi_positive_nt_xent, nt_xent


class MolCLR(nn.Module):
    """MolCLR objective: two independently augmented views of each molecule, NT-Xent between their projections."""

    def __init__(self, encoder: MolecularEncoder, augmentation: MolecularAugmentation, temperature: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.augmentation = augmentation
        self.temperature = temperature

    def views(self, batch: GraphBatch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(h1, z1, h2, z2) of two augmented views; each view gets its own forward pass (own BatchNorm statistics)."""
        h1, z1 = self.encoder(self.augmentation(batch))
        h2, z2 = self.encoder(self.augmentation(batch))
        return h1, z1, h2, z2

    def forward(self, batch: GraphBatch) -> Tensor:
        _, z1, _, z2 = self.views(batch)
        return nt_xent(dist.gather_with_grad(z1), dist.gather_with_grad(z2), self.temperature)


@contextlib.contextmanager
def frozen_batchnorm_statistics(module: nn.Module) -> Iterator[None]:
    """Within the block, BatchNorm layers normalize with batch statistics but leave their running ones unchanged."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None) for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


DEFAULT_LAMBDA2 = 0.5


class IMolCLR(MolCLR):
    """iMolCLR training module (see the module docstring); ``forward`` returns (loss, metrics).

    ``max_fragments`` (default 1; 0 = all) contrasts at most that many randomly chosen fragments
    per molecule each step, a cheaper estimate of the fragment term in which every fragment still
    takes part over the epochs. Encoding all fragments adds about 0.8 of a view's atoms to each step
    (measured +44% over a MolCLR step, ``benchmarks/results/imolclr_throughput.md``); one per
    molecule keeps the whole iMolCLR overhead under the 30% budget. Fragment graphs go through the
    encoder in a separate pass that leaves its BatchNorm running statistics unchanged.
    """

    def __init__(
        self,
        encoder: MolecularEncoder,
        augmentation: MolecularAugmentation,
        temperature: float = 0.1,
        lambda1: float = DEFAULT_LAMBDA1,
        lambda2: float = DEFAULT_LAMBDA2,
        weight_mode: str = "denominator",
        max_fragments: int = 1,
    ) -> None:
        super().__init__(encoder, augmentation, temperature)
        if not 0.0 <= lambda1 <= 1.0:
            raise ValueError(f"lambda1 must lie in [0, 1], got {lambda1}")
        if lambda2 < 0:
            raise ValueError(f"lambda2 must be >= 0, got {lambda2}")
        if weight_mode not in NEGATIVE_WEIGHT_MODES:
            raise ValueError(f"weight_mode must be one of {NEGATIVE_WEIGHT_MODES}, got {weight_mode!r}")
        if max_fragments < 0:
            raise ValueError(f"max_fragments must be >= 0 (0 = all fragments), got {max_fragments}")
        self.lambda1 = lambda1
        self.lambda2 = lambda2
        self.weight_mode = weight_mode
        self.max_fragments = max_fragments

    def molecule_loss(self, z1: Tensor, z2: Tensor, batch: GraphBatch) -> Tensor:
        """Weighted NT-Xent of the gathered views ``z1``, ``z2`` (plain NT-Xent when lambda1 = 0)."""
        if self.lambda1 == 0:
            return nt_xent(z1, z2, self.temperature)
        if batch.ecfp is None:
            raise ValueError("iMolCLR with lambda1 > 0 needs fingerprints: build the store with the 'ecfp' extra")
        weights = negative_weights(tanimoto_matrix(dist.all_gather_tensor(batch.ecfp)), self.lambda1)
        return nt_xent(z1, z2, self.temperature, negative_weights=weights, weight_mode=self.weight_mode)

    def fragment_loss(self, z1: Tensor, z2: Tensor, batch: GraphBatch) -> Tensor:
        """Molecule-vs-fragments NT-Xent of the gathered views against all ranks' fragments, mean of the two views."""
        if batch.fragments is None or batch.fragment_owner is None:
            raise ValueError("iMolCLR with lambda2 > 0 needs BRICS fragments: build the store with the 'fragments' extra")
        fragments, owner = batch.fragments, batch.fragment_owner
        if self.max_fragments and owner.numel():
            keep = random_rank_in_groups(owner, batch.num_graphs) < self.max_fragments
            fragments, owner = select_graphs(fragments, keep), owner[keep]
        # every rank takes part in the gathers, also one whose molecules BRICS does not split
        if owner.numel():
            with frozen_batchnorm_statistics(self.encoder):
                zf = self.encoder(fragments)[1]
        else:
            zf = z1.new_zeros((0, z1.shape[1]))
        zf, owner = dist.gather_with_grad(zf), dist.gather_index(owner, batch.num_graphs)
        if owner.numel() == 0:
            return (z1.sum() + z2.sum()) * 0.0
        return 0.5 * (multi_positive_nt_xent(z1, zf, owner, self.temperature)
                      + multi_positive_nt_xent(z2, zf, owner, self.temperature))

    def forward(self, batch: GraphBatch) -> tuple[Tensor, dict]:
        _, z1, _, z2 = self.views(batch)
        z1, z2 = dist.gather_with_grad(z1), dist.gather_with_grad(z2)
        loss_mol = self.molecule_loss(z1, z2, batch)
        if self.lambda2 == 0:
            return loss_mol, {"loss_mol": loss_mol.detach()}
        loss_frag = self.fragment_loss(z1, z2, batch)
        return loss_mol + self.lambda2 * loss_frag, {"loss_mol": loss_mol.detach(), "loss_frag": loss_frag.detach()}


def _descriptor_prediction(with_bits: bool, mask_attributes: bool = False) -> Callable[..., nn.Module]:
    """A :class:`PhysChem` builder with the registry's signature: no contrast, so the temperature is unused; the
    targets are as wide as their store extras (217 descriptors; 2048 ECFP4 bits with ``with_bits``);
    ``mask_attributes`` adds the masked atoms' attributes as targets."""
    def build(encoder: MolecularEncoder, augmentation: MolecularAugmentation, temperature: float,
              **options) -> PhysChem:
        n_bits = 8 * get_extra(BITS_EXTRA).width if with_bits else 0
        return PhysChem(encoder, augmentation, get_extra(DESCRIPTOR_EXTRA).width, n_bits=n_bits,
                        mask_attributes=mask_attributes, **options)
    return build


# method -> builder(encoder, augmentation, temperature, **method_options)
OBJECTIVES: dict[str, Callable[..., nn.Module]] = {"molclr": MolCLR, "imolclr": IMolCLR,
                                                   "physchem": _descriptor_prediction(with_bits=False),
                                                   "physchem-ecfp": _descriptor_prediction(with_bits=True),
                                                   "attrmask": build_attribute_masking, "graphmae": build_graphmae,
                                                   "contextpred": build_context_prediction,
                                                   "physchem-attrmask": _descriptor_prediction(with_bits=False,
                                                                                               mask_attributes=True)}
MASKING_METHODS = ("attrmask", "physchem-attrmask", "graphmae")  # methods whose --mask-rate chooses the atoms to predict
CONTRASTIVE_METHODS = ("molclr", "imolclr")  # methods that contrast two augmented views
# pretrain's view and masking settings (PretrainConfig's fields) -> the methods that read them; any other method
# would silently ignore the setting, so the command line refuses it there
SETTING_READERS: dict[str, tuple[str, ...]] = {"augmentations": CONTRASTIVE_METHODS,
                                              "delete_rate": CONTRASTIVE_METHODS,
                                              "subgraph_rate": CONTRASTIVE_METHODS, "temperature": CONTRASTIVE_METHODS,
                                              "mask_rate": CONTRASTIVE_METHODS + MASKING_METHODS}
BATCH_FEATURES: dict[str, tuple[str, ...]] = {"physchem": (DESCRIPTOR_EXTRA,),  # row extras each batch carries
                                              "physchem-ecfp": (DESCRIPTOR_EXTRA, BITS_EXTRA),
                                              "physchem-attrmask": (DESCRIPTOR_EXTRA,)}
STORE_EXTRAS: dict[str, tuple[str, ...]] = {"molclr": (), "imolclr": ("ecfp", "fragments"), "attrmask": (),
                                            "graphmae": (), "contextpred": (),
                                            **BATCH_FEATURES}
