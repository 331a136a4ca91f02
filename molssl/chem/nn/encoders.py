"""GIN and GCN molecular encoders with per-layer bond embeddings (MolCLR architecture).

Architecture after Wang et al., Nat. Mach. Intell. 4, 279 (2022) and its reference code: atom
embedding = type embedding + chirality embedding; each layer aggregates messages h_j + e_ij over
the neighbours and a self-loop (bond type 4), followed by BatchNorm, ReLU (not after the last
layer) and dropout; mean pooling; ``feat_lin`` to the representation h; projection head to z.
With the ``rich`` featurizer every further atom and bond field adds its own embedding to the sum.

Message passing is two sparse matrix products per layer (:mod:`molssl.chem.nn.message_passing`):
the neighbours' features and their bond embeddings, the latter from one table per layer (one row per
combination of bond-field values, 15 rows for MolCLR). The same mathematics as the reference's
lookups plus PyG ``MessagePassing``, about four times faster on CPU (under bf16 on CPU, where the edge
weights are 1, the two products are one embedding bag instead).

In fp32 on the CPU the first GIN layer's first product is taken over the batch's distinct atoms rather than over
its atoms: the layer's input is a sum of atom-field embeddings, so each atom's row is one of a few kinds (a MolCLR
view of 512 MOSES molecules: 10,361 atoms, 8 kinds with the MolCLR featurizer, 48 with the rich one), and
``A (h W^T) = K (rows W^T)`` with K counting each atom's neighbours by kind. That removes three of the thirty
(atoms x 300) x (300 x 600)-sized products of a pre-training step (the product and its two gradients), for a
neighbour sum 600 wide instead of 300 in that layer; the same
mathematics, summed in another order (tests compare outputs and gradients with the per-atom product). Without dropout
(pre-training's default) every layer then runs once per distinct atom environment rather than once per atom
(:mod:`molssl.chem.nn.environments`): 459 radius-1 and 3,989 radius-2 environments in that view.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from molssl.chem.data.batch import GraphBatch
from molssl.chem.data.featurize import Featurizer
from molssl.chem.data.featurizers import FEATURIZERS, get_featurizer
from molssl.chem.nn import environments
from molssl.chem.nn.message_passing import Neighbourhood, neighbourhood
from molssl.core.device import compute_dtype
from molssl.core.fused_linear import linear
from molssl.core.heads import ProjectionHead

_POOLS = {"mean": global_mean_pool, "add": global_add_pool, "max": global_max_pool}


def mixed_radix_strides(vocab: tuple[int, ...]) -> tuple[int, ...]:
    """Mixed-radix strides for fields of sizes ``vocab``: one number per field combination, sum(f_i * stride_i)
    (a bond's row in the combined bond table; an atom's kind)."""
    strides, step = [], 1
    for size in reversed(vocab):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def edge_codes(edge_attr: Tensor, vocab: tuple[int, ...]) -> Tensor:
    """Row of each edge's field combination in the combined bond table."""
    code = edge_attr[:, 0] * mixed_radix_strides(vocab)[0]
    for j, stride in enumerate(mixed_radix_strides(vocab)[1:], start=1):
        code = code + edge_attr[:, j] * stride
    return code


def takes_products_by_kind(kind: str, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether an encoder of this kind, running on ``device`` in ``dtype``, takes its first product over atom kinds
    and (without dropout) its layers over atom environments (module docstring): GIN in fp32 on the CPU."""
    return kind == "gin" and device.type == "cpu" and dtype == torch.float32


_BY_KIND = True  # False inside per_atom_first_product()
_BY_ENVIRONMENT = True  # False inside per_atom_layers()


@contextmanager
def per_atom_first_product() -> Iterator[None]:
    """Inside the block the first GIN product runs over every atom: what taking it over atom kinds is measured and
    tested against (module docstring)."""
    global _BY_KIND
    by_kind, _BY_KIND = _BY_KIND, False
    try:
        yield
    finally:
        _BY_KIND = by_kind


@contextmanager
def per_atom_layers() -> Iterator[None]:
    """Inside the block every GIN layer runs once per atom (the first product may still run over atom kinds): what
    running the layers once per atom environment is measured and tested against (:mod:`molssl.chem.nn.environments`)."""
    global _BY_ENVIRONMENT
    by_environment, _BY_ENVIRONMENT = _BY_ENVIRONMENT, False
    try:
        yield
    finally:
        _BY_ENVIRONMENT = by_environment


MAX_LAYERS = 64  # MolCLR uses 5; a file asking for a million would take minutes to lay out before being refused


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
    featurizer: str = "molclr"

    def __post_init__(self) -> None:
        if self.featurizer not in FEATURIZERS:
            raise ValueError(f"featurizer must be one of {tuple(FEATURIZERS)}, got {self.featurizer!r}")
        if self.kind not in ("gin", "gcn"):
            raise ValueError(f"encoder must be 'gin' or 'gcn', got {self.kind!r}")
        if self.pool not in _POOLS:
            raise ValueError(f"pool must be one of {sorted(_POOLS)}, got {self.pool!r}")
        if not 2 <= self.num_layers <= MAX_LAYERS:
            raise ValueError(f"an encoder has 2 to {MAX_LAYERS} layers, got num_layers={self.num_layers}")
        for name in ("emb_dim", "feat_dim", "proj_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


class BondEmbedding(nn.Module):
    """One embedding per bond field (MolCLR: type, direction), looked up once per edge through a combined table."""

    def __init__(self, dim: int, featurizer: Featurizer) -> None:
        super().__init__()
        vocab = featurizer.bond_vocab
        self.edge_embedding1 = nn.Embedding(vocab[0], dim)
        self.edge_embedding2 = nn.Embedding(vocab[1], dim)
        self.edge_embeddings = nn.ModuleList(nn.Embedding(size, dim) for size in vocab[2:])
        for embedding in (self.edge_embedding1, self.edge_embedding2, *self.edge_embeddings):
            nn.init.xavier_uniform_(embedding.weight)
        self.self_loop_code = int(sum(v * s for v, s in zip(featurizer.self_loop, mixed_radix_strides(vocab))))

    def table(self) -> Tensor:
        """(prod(vocab), dim): the row of a field combination is the sum of the fields' embeddings."""
        table = self.edge_embedding1.weight[:, None, :] + self.edge_embedding2.weight[None, :, :]
        for embedding in self.edge_embeddings:
            table = table.flatten(0, 1)[:, None, :] + embedding.weight[None, :, :]
        return table.flatten(0, 1)


class GINLayer(BondEmbedding):
    """GIN with edge features: MLP( sum_j (h_j + e_ij) + h_i + e_self ), the self-loop inside ``graph``; the MLP is
    dim -> 2 dim -> ``out_dim`` (default ``dim``; GraphMAE's decoder maps to the atom vocabulary)."""

    def __init__(self, dim: int, featurizer: Featurizer, out_dim: Optional[int] = None) -> None:
        super().__init__(dim, featurizer)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, out_dim or dim))

    def forward(self, h: Tensor, graph: Neighbourhood) -> Tensor:
        """``self.mlp`` on the neighbourhood sums, its bias and ReLU fused into the products on CPU
        (:mod:`molssl.core.fused_linear`; the same parameters and mathematics). In bf16 the sums may come with
        rows of zeros so that the products see few distinct shapes (:mod:`molssl.chem.nn.message_passing`); the
        MLP works row by row, and those rows are dropped after it."""
        hidden = linear(graph.aggregate(h, self.table(), padded=True), self.mlp[0], relu=True)
        out = linear(hidden, self.mlp[2])
        return out if out.shape[0] == h.shape[0] else out[:h.shape[0]]

    def forward_by_kind(self, rows: Tensor, graph: Neighbourhood) -> Tensor:
        """:meth:`forward` on h = ``rows[kinds]``, given ``graph.by_kind(kinds, len(rows))``: the first product is
        taken over the few distinct rows, ``A (h W^T) = K (rows W^T)``, and its bias rides on the self-loop's bond
        row (every atom has exactly one self-loop, of weight 1). ``graph`` may also hold the sums of some atoms only
        (one per environment: :func:`molssl.chem.nn.environments.representative_sums`); the result has its rows.
        Only for fp32 on the CPU (see :meth:`MolecularEncoder.node_embeddings`)."""
        first = self.mlp[0]
        table = F.linear(self.table(), first.weight)
        table = table.index_add(0, torch.tensor([self.self_loop_code], device=table.device), first.bias[None])
        hidden = F.relu(graph.aggregate(F.linear(rows, first.weight), table))
        return linear(hidden, self.mlp[2])


class GCNLayer(nn.Module):
    """GCN with scalar edge features: sum_j c_ij (W h_j + e_ij) + b over neighbours and a self-loop.

    ``normalize=True`` uses the symmetric GCN weights c_ij = 1/sqrt(d_i d_j) (Kipf & Welling 2017,
    degrees counting the self-loop). MolCLR's reference code computes these weights but never
    applies them (c_ij = 1); ``normalize=False`` reproduces that for converted checkpoints.
    """

    def __init__(self, dim: int, featurizer: Featurizer, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize
        self.weight = nn.Parameter(torch.empty(dim, dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        nn.init.xavier_uniform_(self.weight)
        self.bonds = BondEmbedding(1, featurizer)

    def forward(self, h: Tensor, graph: Neighbourhood) -> Tensor:
        """``graph`` carries the weights c_ij of the edges and self-loops (1 without normalization)."""
        hw = h @ self.weight.to(h.dtype)
        bonds = self.bonds.table().expand(-1, hw.shape[1]).contiguous()  # one scalar per bond, on every channel
        return graph.aggregate(hw, bonds) + self.bias


class MolecularEncoder(nn.Module):
    """Graph encoder + projection head; ``forward`` returns (h, z) = (representation, projection)."""

    def __init__(self, config: EncoderConfig = EncoderConfig()) -> None:
        super().__init__()
        self.config = config
        self.featurizer = spec = get_featurizer(config.featurizer)
        d = config.emb_dim
        self.x_embedding1 = nn.Embedding(spec.atom_vocab[0], d)
        self.x_embedding2 = nn.Embedding(spec.atom_vocab[1], d)
        self.x_embeddings = nn.ModuleList(nn.Embedding(size, d) for size in spec.atom_vocab[2:])
        for embedding in (self.x_embedding1, self.x_embedding2, *self.x_embeddings):
            nn.init.xavier_uniform_(embedding.weight)
        make = (lambda: GINLayer(d, spec)) if config.kind == "gin" else (lambda: GCNLayer(d, spec, config.gcn_normalize))
        self.gnns = nn.ModuleList(make() for _ in range(config.num_layers))
        self.batch_norms = nn.ModuleList(nn.BatchNorm1d(d) for _ in range(config.num_layers))
        self.feat_lin = nn.Linear(d, config.feat_dim)
        self.head = ProjectionHead(config.feat_dim, config.feat_dim, config.proj_dim)

    def neighbourhood(self, batch: GraphBatch, weighted: bool = True) -> Neighbourhood:
        """The batch's message-passing operators, self-loops included (shared by every layer); a normalized
        GCN's weights are c_ij = 1/sqrt(d_i d_j), degrees counting the self-loop (``weighted=False``: every
        weight 1, the plain sums of a GIN decoder on top)."""
        codes, n_codes = self.bond_codes(batch)
        self_loop = self.gnns[0].self_loop_code if self.config.kind == "gin" else self.gnns[0].bonds.self_loop_code
        if self.config.kind != "gcn" or not self.config.gcn_normalize or not weighted:
            return neighbourhood(batch.edge_index, codes, batch.num_atoms, n_codes, self_loop)
        src, dst = batch.edge_index
        inv_sqrt = (torch.bincount(dst, minlength=batch.num_atoms).float() + 1).rsqrt()
        return neighbourhood(batch.edge_index, codes, batch.num_atoms, n_codes, self_loop,
                             weights=inv_sqrt[src] * inv_sqrt[dst], self_weights=inv_sqrt * inv_sqrt)

    def bond_codes(self, batch: GraphBatch) -> tuple[Tensor, int]:
        """Each bond's row in the combined bond tables, and their number of rows."""
        vocab = self.featurizer.bond_vocab
        return edge_codes(batch.edge_attr, vocab), int(torch.tensor(vocab).prod())

    def node_embeddings(self, batch: GraphBatch, graph: Optional[Neighbourhood] = None) -> Tensor:
        """Per-atom embeddings after the last layer, (n_atoms, emb_dim); ``graph``: the batch's
        :meth:`neighbourhood`, where the caller has built it already (a decoder uses it again)."""
        if (_BY_ENVIRONMENT and self._folds_first_product(batch, graph)
                and (self.config.dropout == 0 or not self.training)
                and all(environments.counts_apply_to(norm) for norm in self.batch_norms)):
            return self._node_embeddings_by_environment(batch)  # builds its own sums: no per-atom graph needed
        graph = self.neighbourhood(batch) if graph is None else graph
        fold = self._folds_first_product(batch, graph)
        if fold:
            kinds, inverse = self._atom_kinds(batch.x)
            h = self._atom_embedding(kinds)
        else:
            h = self._atom_embedding(batch.x)
        last = self.config.num_layers - 1
        for i, (conv, norm) in enumerate(zip(self.gnns, self.batch_norms)):
            h = norm(conv.forward_by_kind(h, graph.by_kind(inverse, kinds.shape[0])) if fold and i == 0
                     else conv(h, graph))
            if i < last:
                h = F.relu(h)
            h = F.dropout(h, self.config.dropout, training=self.training)
        return h

    def _node_embeddings_by_environment(self, batch: GraphBatch) -> Tensor:
        """:meth:`node_embeddings` with each layer run once per distinct atom environment
        (:mod:`molssl.chem.nn.environments`)."""
        kinds, of_atom = self._atom_kinds(batch.x)
        h = self._atom_embedding(kinds)
        src, dst = batch.edge_index
        codes, n_codes = self.bond_codes(batch)
        inputs = environments.environments_of(of_atom)
        with_transposes = torch.is_grad_enabled()
        last = self.config.num_layers - 1
        for i, (conv, norm) in enumerate(zip(self.gnns, self.batch_norms)):
            outputs = environments.refine(inputs.of_atom, src, dst, codes, n_codes)
            sums = environments.representative_sums(inputs, outputs, src, dst, codes, n_codes, conv.self_loop_code,
                                                    with_transposes)
            h = environments.weighted_batch_norm(norm, conv.forward_by_kind(h, sums), outputs.counts)
            if i < last:
                h = F.relu(h)
            inputs = outputs
        return h[inputs.of_atom]

    def _atom_embedding(self, x: Tensor) -> Tensor:
        """Sum of the atom fields' embeddings for each row of atom fields ``x``."""
        h = self.x_embedding1(x[:, 0]) + self.x_embedding2(x[:, 1])
        for j, embedding in enumerate(self.x_embeddings, start=2):
            h = h + embedding(x[:, j])
        return h

    def _atom_kinds(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The distinct rows of atom fields in ``x`` (kinds, n_kinds x fields) and each atom's kind (an index)."""
        strides = torch.tensor(mixed_radix_strides(self.featurizer.atom_vocab), device=x.device)
        codes, inverse = torch.unique((x * strides).sum(1), return_inverse=True)
        vocab = torch.tensor(self.featurizer.atom_vocab, device=x.device)
        return torch.div(codes[:, None], strides, rounding_mode="floor") % vocab, inverse

    def _folds_first_product(self, batch: GraphBatch, graph: Optional[Neighbourhood] = None) -> bool:
        """Whether the first GIN product runs over the batch's distinct atom kinds (:meth:`GINLayer.forward_by_kind`):
        a batch of 512 molecules has ~10,000 atoms but a few dozen kinds at most, so the (atoms x 300) @ (300 x 600)
        product and its two gradients shrink to (kinds x 300) ones, for a neighbour sum 600 wide instead of 300.
        fp32 on the CPU, where it was measured (benchmarks/results/pretrain_throughput.md); in bf16 the first product
        is cheap and the neighbour sum is a bag that needs weights of 1 (a GIN's own :meth:`neighbourhood` has them;
        ``graph``: one given by the caller)."""
        dtype = compute_dtype(self.x_embedding1.weight)
        return (_BY_KIND and takes_products_by_kind(self.config.kind, batch.x.device, dtype)
                and (graph is None or graph.unit_weights))

    def readout(self, nodes: Tensor, batch: GraphBatch) -> Tensor:
        """Graph representation h (num_graphs, feat_dim) of node embeddings: pooled, through ``feat_lin``."""
        return self.feat_lin(_POOLS[self.config.pool](nodes, batch.batch, size=batch.num_graphs))

    def represent(self, batch: GraphBatch) -> Tensor:
        """Graph representation h (num_graphs, feat_dim): pooled node embeddings through ``feat_lin``."""
        return self.readout(self.node_embeddings(batch), batch)

    def forward(self, batch: GraphBatch) -> tuple[Tensor, Tensor]:
        h = self.represent(batch)
        return h, self.head(h)
