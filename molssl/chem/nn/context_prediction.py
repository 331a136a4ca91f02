"""Context prediction: pre-train an encoder to tell an atom's own surroundings from another molecule's.

Hu, Liu, Gomes, Zitnik, Liang, Pande & Leskovec, "Strategies for Pre-training Graph Neural Networks" (ICLR 2020),
the node-level task beside attribute masking (:mod:`molssl.chem.nn.attribute_masking`). Per molecule a random
centre atom is drawn; its *substructure* is the K-hop neighbourhood (K = the encoder's layers) and its *context*
the atoms between r1 = K - 1 and r2 = r1 + 3 hops away (r1 < distance <= r2; the reference code's radii). A
separate, shallower GNN (r2 - r1 = 3 layers) embeds the context graph, and the context's embedding is the mean over
its *anchor* atoms, those it shares with the substructure (distance K). The encoder's embedding of the centre atom
and the context embedding of the same molecule form a positive pair, the centre with the previous molecule's context
a negative one (one negative per molecule; across all processes under ``torchrun``, so that two processes compute
what one would on their joint batch); the loss is binary cross-entropy on their dot products,
``BCE(pos, 1) + BCE(neg, 0)``. Molecules with no atom K hops from the centre have no context and sit out the step.

One change from the paper: the encoder embeds the whole molecule and the centre atom's embedding is read from it,
instead of embedding the substructure graph cut out of it. A K-layer GIN's output at an atom depends only on the
atoms within K hops, so the two differ only in BatchNorm's statistics (here those of whole molecules, which is what
fine-tuning sees) and the cut-out step is saved. The context encoder is dropped after pre-training.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from molssl.chem.data.batch import GraphBatch, induced_subgraph
from molssl.chem.nn.attribute_masking import freeze_readout
from molssl.chem.nn.augment import MolecularAugmentation, random_rank_in_groups
from molssl.chem.nn.encoders import MolecularEncoder
from molssl.core import distributed as dist

CONTEXT_SIZE = 3  # r2 - r1, the reference code's default (and the context GNN's depth)


def hop_distances(batch: GraphBatch, roots: Tensor, max_hops: int) -> Tensor:
    """Bond-path distance of every atom from its graph's root atom (``roots``: one atom index per graph);
    atoms farther than ``max_hops`` (or not connected to the root) get ``max_hops + 1``."""
    distance = torch.full((batch.num_atoms,), max_hops + 1, dtype=torch.long, device=batch.device)
    reached = torch.zeros(batch.num_atoms, dtype=torch.bool, device=batch.device)
    reached[roots] = True
    distance[roots] = 0
    frontier = reached.clone()
    src, dst = batch.edge_index
    for hop in range(1, max_hops + 1):
        step = torch.zeros_like(reached)
        step[dst[frontier[src]]] = True
        step &= ~reached
        distance[step] = hop
        reached |= step
        frontier = step
    return distance


def random_roots(batch: GraphBatch, generator: Optional[torch.Generator] = None) -> Tensor:
    """One uniformly random atom index per graph, in graph order."""
    return (random_rank_in_groups(batch.batch, batch.num_graphs, generator) == 0).nonzero().squeeze(1)


class ContextPrediction(nn.Module):
    """Context-prediction objective (see the module docstring); ``forward`` returns (loss, metrics).

    The encoder's readout (``feat_lin`` and the projection head) takes no part and is frozen, as in attribute
    masking; so is the context encoder's.
    """

    def __init__(self, encoder: MolecularEncoder, context_size: int = CONTEXT_SIZE) -> None:
        super().__init__()
        if context_size < 1:
            raise ValueError(f"the context must be at least one hop wide, got {context_size}")
        self.encoder = encoder
        self.inner = encoder.config.num_layers - 1  # r1
        self.outer = self.inner + context_size  # r2
        freeze_readout(encoder)
        self.context_encoder = MolecularEncoder(replace(encoder.config, num_layers=context_size, dropout=0.0))
        freeze_readout(self.context_encoder)

    def contexts(self, batch: GraphBatch, roots: Tensor) -> tuple[Tensor, Tensor]:
        """(context embedding of every graph that has one, (n_with_context, emb_dim); which graphs have one)."""
        distance = hop_distances(batch, roots, self.outer)
        in_context = (distance > self.inner) & (distance <= self.outer)
        context = induced_subgraph(batch, in_context)
        nodes = self.context_encoder.node_embeddings(context).float()
        anchors = distance[in_context] <= self.encoder.config.num_layers
        graph = context.batch[anchors]
        sums = nodes.new_zeros(batch.num_graphs, nodes.shape[1]).index_add_(0, graph, nodes[anchors])
        counts = torch.bincount(graph, minlength=batch.num_graphs)
        has = counts > 0
        return sums[has] / counts[has, None], has

    def centres(self, batch: GraphBatch, generator: Optional[torch.Generator] = None) -> Tensor:
        """This step's centre atoms, one per graph (:func:`random_roots`)."""
        return random_roots(batch, generator)

    def forward(self, batch: GraphBatch, generator: Optional[torch.Generator] = None) -> tuple[Tensor, dict]:
        roots = self.centres(batch, generator)
        centres = self.encoder.node_embeddings(batch)[roots]
        context, has = self.contexts(batch, roots)
        centres = centres[has].float()
        positive = (centres * context).sum(1)
        terms = F.binary_cross_entropy_with_logits(positive, torch.ones_like(positive), reduction="sum")
        correct, compared = (positive > 0).float().sum(), positive.numel()
        everyone = dist.gather_with_grad(context)  # every process's contexts, in rank order
        if everyone.shape[0] > 1:  # the negative: the previous molecule's context in the global batch
            offset = sum(dist.gathered_sizes(context.shape[0], context.device)[:dist.rank()])
            previous = (torch.arange(context.shape[0], device=context.device) + offset - 1) % everyone.shape[0]
            negative = (centres * everyone[previous]).sum(1)
            terms = terms + F.binary_cross_entropy_with_logits(negative, torch.zeros_like(negative), reduction="sum")
            correct, compared = correct + (negative < 0).float().sum(), compared + negative.numel()
        pairs = torch.tensor(float(centres.shape[0]), device=centres.device)
        loss = dist.global_mean(terms, pairs)
        accuracy = correct / max(compared, 1)
        return loss, {"accuracy": accuracy.detach(), "with_context": has.float().mean().detach()}


def build_context_prediction(encoder: MolecularEncoder, augmentation: MolecularAugmentation, temperature: float,
                             **options) -> ContextPrediction:
    """The registry's builder: ``context_size`` may come as a method option; no augmentation and no contrast
    temperature (the negatives are scored by dot products)."""
    unknown = set(options) - {"context_size"}
    if unknown:
        raise ValueError(f"context prediction takes only the option 'context_size', got {sorted(unknown)}")
    return ContextPrediction(encoder, **options)
