"""GIN and GCN molecular encoders with per-layer bond embeddings (MolCLR architecture).

Architecture after Wang et al., Nat. Mach. Intell. 4, 279 (2022) and its reference code: atom
embedding = type embedding + chirality embedding; each layer aggregates messages h_j + e_ij over
the neighbours and a self-loop (bond type 4), followed by BatchNorm, ReLU (not after the last
layer) and dropout; mean pooling; ``feat_lin`` to the representation h; projection head to z.

Message passing is a single ``index_add_`` per layer over a precomputed edge code, with the two
bond embeddings of a layer folded into one 15-row table: the same mathematics as the reference's
two lookups plus PyG ``MessagePassing``, with fewer kernels.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from molssl.chem.data.batch import GraphBatch
from molssl.chem.data.featurize import NUM_ATOM_TYPES, NUM_BOND_DIRECTIONS, NUM_BOND_TYPES, NUM_CHIRALITY_TAGS, SELF_LOOP_BOND
from molssl.core.heads import ProjectionHead

_POOLS = {"mean": global_mean_pool, "add": global_add_pool, "max": global_max_pool}
SELF_LOOP_CODE = SELF_LOOP_BOND * NUM_BOND_DIRECTIONS


@dataclass
class EncoderConfig:
    """Hyperparameters of a :class:`MolecularEncoder` (MolCLR defaults)."""

    kind: Literal["gin", "gcn"] = "gin"
    num_layers: int = 5
    emb_dim: int = 300
    feat_dim: int = 512
    proj_dim: int = 256
    dropout: float = 0.0
    pool: Literal["mean", "add", "max"] = "mean"
    gcn_normalize: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("gin", "gcn"):
            raise ValueError(f"encoder must be 'gin' or 'gcn', got {self.kind!r}")
        if self.pool not in _POOLS:
            raise ValueError(f"pool must be one of {sorted(_POOLS)}, got {self.pool!r}")
        if self.num_layers < 2:
            raise ValueError("an encoder needs at least 2 layers")

    def to_dict(self) -> dict:
        return asdict(self)


class BondEmbedding(nn.Module):
    """Bond type + bond direction embeddings, looked up once per edge through a combined table."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.edge_embedding1 = nn.Embedding(NUM_BOND_TYPES, dim)
        self.edge_embedding2 = nn.Embedding(NUM_BOND_DIRECTIONS, dim)
        nn.init.xavier_uniform_(self.edge_embedding1.weight)
        nn.init.xavier_uniform_(self.edge_embedding2.weight)

    def table(self) -> Tensor:
        """(NUM_BOND_TYPES * NUM_BOND_DIRECTIONS, dim): row type*3+dir = emb1[type] + emb2[dir]."""
        return (self.edge_embedding1.weight[:, None, :] + self.edge_embedding2.weight[None, :, :]).flatten(0, 1)


class GINLayer(BondEmbedding):
    """GIN with edge features: MLP( sum_j (h_j + e_ij) + h_i + e_self )."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))

    def forward(self, h: Tensor, edge_index: Tensor, edge_code: Tensor) -> Tensor:
        table = self.table()
        messages = h[edge_index[0]] + table[edge_code].to(h.dtype)
        aggregated = torch.zeros_like(h).index_add_(0, edge_index[1], messages)
        return self.mlp(aggregated + h + table[SELF_LOOP_CODE].to(h.dtype))


class GCNLayer(nn.Module):
    """GCN with scalar edge features: sum_j c_ij (W h_j + e_ij) + b over neighbours and a self-loop.

    ``normalize=True`` uses the symmetric GCN weights c_ij = 1/sqrt(d_i d_j) (Kipf & Welling 2017,
    degrees counting the self-loop). MolCLR's reference code computes these weights but never
    applies them (c_ij = 1); ``normalize=False`` reproduces that for converted checkpoints.
    """

    def __init__(self, dim: int, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize
        self.weight = nn.Parameter(torch.empty(dim, dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        nn.init.xavier_uniform_(self.weight)
        self.bonds = BondEmbedding(1)

    def forward(self, h: Tensor, edge_index: Tensor, edge_code: Tensor) -> Tensor:
        table = self.bonds.table().to(h.dtype)
        hw = h @ self.weight.to(h.dtype)
        messages = hw[edge_index[0]] + table[edge_code]
        self_messages = hw + table[SELF_LOOP_CODE]
        if self.normalize:
            degree = torch.bincount(edge_index[1], minlength=h.shape[0]).to(h.dtype) + 1
            inv_sqrt = degree.rsqrt()
            messages = messages * (inv_sqrt[edge_index[0]] * inv_sqrt[edge_index[1]])[:, None]
            self_messages = self_messages * (inv_sqrt * inv_sqrt)[:, None]
        return torch.zeros_like(hw).index_add_(0, edge_index[1], messages) + self_messages + self.bias.to(h.dtype)


class MolecularEncoder(nn.Module):
    """Graph encoder + projection head; ``forward`` returns (h, z) = (representation, projection)."""

    def __init__(self, config: EncoderConfig = EncoderConfig()) -> None:
        super().__init__()
        self.config = config
        d = config.emb_dim
        self.x_embedding1 = nn.Embedding(NUM_ATOM_TYPES, d)
        self.x_embedding2 = nn.Embedding(NUM_CHIRALITY_TAGS, d)
        nn.init.xavier_uniform_(self.x_embedding1.weight)
        nn.init.xavier_uniform_(self.x_embedding2.weight)
        make = (lambda: GINLayer(d)) if config.kind == "gin" else (lambda: GCNLayer(d, config.gcn_normalize))
        self.gnns = nn.ModuleList(make() for _ in range(config.num_layers))
        self.batch_norms = nn.ModuleList(nn.BatchNorm1d(d) for _ in range(config.num_layers))
        self.feat_lin = nn.Linear(d, config.feat_dim)
        self.head = ProjectionHead(config.feat_dim, config.feat_dim, config.proj_dim)

    def node_embeddings(self, batch: GraphBatch) -> Tensor:
        """Per-atom embeddings after the last layer, (n_atoms, emb_dim)."""
        h = self.x_embedding1(batch.x[:, 0]) + self.x_embedding2(batch.x[:, 1])
        edge_code = batch.edge_attr[:, 0] * NUM_BOND_DIRECTIONS + batch.edge_attr[:, 1]
        last = self.config.num_layers - 1
        for i, (conv, norm) in enumerate(zip(self.gnns, self.batch_norms)):
            h = norm(conv(h, batch.edge_index, edge_code))
            if i < last:
                h = F.relu(h)
            h = F.dropout(h, self.config.dropout, training=self.training)
        return h

    def represent(self, batch: GraphBatch) -> Tensor:
        """Graph representation h (num_graphs, feat_dim): pooled node embeddings through ``feat_lin``."""
        pooled = _POOLS[self.config.pool](self.node_embeddings(batch), batch.batch, size=batch.num_graphs)
        return self.feat_lin(pooled)

    def forward(self, batch: GraphBatch) -> tuple[Tensor, Tensor]:
        h = self.represent(batch)
        return h, self.head(h)
