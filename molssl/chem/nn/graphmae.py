"""GraphMAE: pre-train an encoder to rebuild masked atoms through a decoder that sees them masked again.

Hou, Liu, Cen, Dong, Yang, Wang & Tang, "GraphMAE: Self-Supervised Masked Graph Autoencoders" (KDD 2022), in its
molecular transfer setting (reference code github.com/THUDM/GraphMAE, ``chem/``): 25% of the atoms are masked, the
encoder's node embeddings go through PReLU and a bias-free linear map, the masked atoms' rows are set to zero again
("re-mask") and one GIN layer decodes every atom from its neighbours; the loss is the scaled cosine error
``(1 - cos(decoded, one-hot atom type)) ** alpha`` averaged over the masked atoms, ``alpha = 1`` (the reference's
setting for molecules, with lr 1e-3, batch 256, 100 epochs of 2M ZINC molecules).

Attribute masking (:mod:`molssl.chem.nn.attribute_masking`) reads a masked atom's identity off its own final
embedding with a linear classifier; here the decoder gets zeros at the masked atoms and has to rebuild them from
their neighbours' embeddings, so the encoder must carry each atom's context into its neighbours. The paper's
mean ROC-AUC over eight MoleculeNet sets is 73.8 against 71.1 for attribute masking (reference README, transfer
learning table). As in ``--method attrmask``, every field of a masked atom is replaced by its mask token (with
the rich vocabulary, degree or hydrogen count would otherwise give the element away); the target is the atom type,
as in the paper. The decoder is dropped after pre-training: fine-tuning starts from the encoder alone.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from molssl.chem.data.batch import GraphBatch
from molssl.chem.data.featurize import Featurizer
from molssl.chem.nn.attribute_masking import freeze_readout
from molssl.chem.nn.augment import MolecularAugmentation, mask_atoms_flagged
from molssl.chem.nn.encoders import GINLayer, MolecularEncoder
from molssl.chem.nn.message_passing import Neighbourhood
from molssl.core import distributed as dist


def scaled_cosine_error(pred: Tensor, target: Tensor, alpha: float = 1.0) -> Tensor:
    """Per row, ``(1 - cos(pred, onehot(target))) ** alpha``: GraphMAE's SCE with class indices as targets."""
    cosine = pred.gather(1, target[:, None]).squeeze(1) / pred.norm(dim=1).clamp_min(1e-12)
    return (1.0 - cosine).pow(alpha)


class MaskedAtomDecoder(nn.Module):
    """PReLU, a bias-free linear map, zeros at the masked atoms, one GIN layer to ``n_types`` scores per atom."""

    def __init__(self, emb_dim: int, featurizer: Featurizer, n_types: int) -> None:
        super().__init__()
        self.activation = nn.PReLU()
        self.to_decoder = nn.Linear(emb_dim, emb_dim, bias=False)
        self.conv = GINLayer(emb_dim, featurizer, out_dim=n_types)

    def forward(self, nodes: Tensor, graph: Neighbourhood, masked: Tensor) -> Tensor:
        hidden = self.to_decoder(self.activation(nodes))
        return self.conv(hidden.masked_fill(masked[:, None], 0.0), graph)


class GraphMAE(nn.Module):
    """GraphMAE objective (see the module docstring); ``forward`` returns (loss, metrics).

    As in attribute masking, the encoder's ``feat_lin`` and projection head take no part and are frozen
    (:func:`~molssl.chem.nn.attribute_masking.freeze_readout`).
    """

    def __init__(self, encoder: MolecularEncoder, rate: float, mask_values: Sequence[int], alpha: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"the masking rate must lie in (0, 1], got {rate}")
        if not alpha >= 1.0:
            raise ValueError(f"GraphMAE's scaling exponent alpha must be at least 1, got {alpha}")
        self.encoder, self.rate, self.alpha = encoder, rate, alpha
        self.mask_values = tuple(int(v) for v in mask_values)
        freeze_readout(encoder)
        self.decoder = MaskedAtomDecoder(encoder.config.emb_dim, encoder.featurizer, encoder.featurizer.atom_vocab[0])

    def decoder_graph(self, graph: Neighbourhood, view: GraphBatch) -> Neighbourhood:
        """The decoder is a GIN layer: plain sums, also under a normalized GCN encoder."""
        return graph if graph.unit_weights else self.encoder.neighbourhood(view, weighted=False)

    def mask(self, batch: GraphBatch, generator: Optional[torch.Generator] = None) -> tuple[GraphBatch, Tensor]:
        """(the batch with the chosen atoms' fields set to the mask token, a flag per atom marking them)."""
        return mask_atoms_flagged(batch, self.rate, generator, self.mask_values)

    def forward(self, batch: GraphBatch) -> tuple[Tensor, dict]:
        view, masked = self.mask(batch)
        graph = self.encoder.neighbourhood(view)
        nodes = self.encoder.node_embeddings(view, graph)
        scores = self.decoder(nodes, self.decoder_graph(graph, view), masked)[masked].float()
        truth = batch.x[masked, 0]
        errors = scaled_cosine_error(scores, truth, self.alpha)
        loss = dist.global_mean(errors.sum(), torch.tensor(float(truth.numel()), device=scores.device))
        accuracy = (scores.argmax(1) == truth).float().mean() if truth.numel() else scores.new_zeros(())
        return loss, {"accuracy": accuracy.detach()}


def build_graphmae(encoder: MolecularEncoder, augmentation: MolecularAugmentation, temperature: float,
                   **options) -> GraphMAE:
    """The registry's builder: the masking rate and mask token are the augmentation's (``--mask-rate``, the
    featurizer's ``atom_mask``); ``alpha`` may come as a method option; no contrast, so the temperature is unused."""
    unknown = set(options) - {"alpha"}
    if unknown:
        raise ValueError(f"GraphMAE takes only the option 'alpha', got {sorted(unknown)}")
    return GraphMAE(encoder, augmentation.mask_rate, augmentation.mask_values, **options)
