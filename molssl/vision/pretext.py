"""Pretext tasks on images: rotation prediction, jigsaw puzzles and relative patch position.

Each is a training module (``forward(batch) -> (loss, {"acc": ...})``) around a shared ``encoder``;
the classifiers are a conv stage on the encoder's feature map (:class:`PretextTask`) and an
:class:`molssl.core.heads.MLPHead`. Batches are uint8 or float images
(B, C, H, W); randomness uses torch's global generator, so runs are reproducible and resumable.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.core.heads import MLPHead
from molssl.vision.data import to_unit_float
from molssl.vision.encoders import ConvEncoder
from molssl.vision.permutations import maximal_hamming_permutations


def _classify(logits: Tensor, labels: Tensor) -> tuple[Tensor, dict]:
    loss = F.cross_entropy(logits.float(), labels)
    return loss, {"acc": float((logits.argmax(1) == labels).float().mean())}


def grid_tiles(x: Tensor, grid: int, gap: Optional[int] = None, jitter: bool = True) -> Tensor:
    """Cut each image into a ``grid`` x ``grid`` array of tiles, each randomly placed inside its cell.

    The cell is ``min(H, W) // grid`` pixels; the tile is ``gap`` pixels smaller (default: a quarter of
    the cell), so tiles do not share edges and the task cannot be solved by matching borders
    (Doersch et al. 2015, Sec. 3; Noroozi & Favaro 2016, Sec. 3.2). Without ``jitter`` every tile sits
    in the middle of its cell (deterministic, for evaluation). Returns (B, grid*grid, C, t, t), tiles in
    row-major order.
    """
    b, c, h, w = x.shape
    cell = min(h, w) // grid
    gap = max(1, cell // 4) if gap is None else gap
    tile = cell - gap
    if tile < 2:
        raise ValueError(f"images of {h}x{w} are too small for a {grid}x{grid} grid with a {gap}-pixel gap")
    k = grid * grid
    if jitter:
        offsets = torch.randint(0, gap + 1, (b, k, 2), device=x.device)
    else:
        offsets = torch.full((b, k, 2), gap // 2, device=x.device)
    cells = torch.arange(grid, device=x.device) * cell
    top = cells.repeat_interleave(grid).view(1, k) + offsets[..., 0]
    left = cells.repeat(grid).view(1, k) + offsets[..., 1]
    span = torch.arange(tile, device=x.device)
    rows = (top[..., None] + span).view(b, k, tile, 1)
    cols = (left[..., None] + span).view(b, k, 1, tile)
    batch_index = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    tiles = x.permute(0, 2, 3, 1)[batch_index, rows, cols]  # (B, K, t, t, C)
    return tiles.permute(0, 1, 4, 2, 3)


def standardize_tiles(tiles: Tensor, eps: float = 0.05) -> Tensor:
    """Give every tile of (B, K, C, t, t) zero mean and unit standard deviation on its own.

    Noroozi & Favaro (2016, Sec. 3.2) normalize each tile independently so that the puzzle cannot be
    solved from low-level statistics (how much ink or light a tile holds) instead of its content.
    ``eps`` (in [0, 1] pixel units) keeps blank background tiles at zero rather than amplifying noise.
    """
    flat = tiles.flatten(2)
    mean = flat.mean(2, keepdim=True)
    std = flat.std(2, keepdim=True)
    return ((flat - mean) / (std + eps)).view_as(tiles)


class TileGridFeatures(nn.Module):
    """Whole-image features as a tile task sees images: the encoder's features of the ``grid`` x ``grid``
    tiles (centred in their cells, standardized if the task standardizes them), concatenated in
    row-major order: (B, grid*grid*D).

    Jigsaw and relative-position encoders only ever embed tiles; this probes them on that input and
    keeps the tiles' layout, which global pooling over a whole image discards.
    """

    input_kind = "tiles"

    def __init__(self, encoder: nn.Module, grid: int = 3, standardize: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.grid = grid
        self.standardize = standardize
        self.feature_dim = grid * grid * encoder.feature_dim

    def forward(self, x: Tensor) -> Tensor:
        tiles = grid_tiles(to_unit_float(x), self.grid, jitter=False)
        if self.standardize:
            tiles = standardize_tiles(tiles)
        return self.encoder(tiles.flatten(0, 1)).view(tiles.shape[0], self.feature_dim)


class PretextTask(nn.Module):
    """The shared part of the pretext tasks (images here, frame order in ``molssl.video``): the encoder,
    and the features their classifiers read.

    With ``conv_head`` (default) the classifier starts with its own conv-BN-ReLU stage (``head_stage``)
    on the encoder's feature map, then pools; without it, the classifier reads the encoder's pooled
    output. The stage keeps the encoder's output from specialising in the pretext task, as RotNet's
    classifier sits on further conv blocks (Gidaris et al. 2018): with MLP-only heads rotation scored
    below random init on k-NN and jigsaw barely above it (benchmarks/results/vision_ssl.md).
    """

    def __init__(self, encoder: nn.Module, conv_head: bool = True) -> None:
        super().__init__()
        if conv_head and not hasattr(encoder, "feature_map"):
            raise ValueError(f"conv_head needs an encoder with a feature_map (ConvEncoder), got {type(encoder).__name__}")
        self.encoder = encoder
        width, dims = encoder.feature_dim, getattr(encoder, "dims", 2)
        self.head_stage = ConvEncoder(width, (width,), (1,), dims=dims) if conv_head else None

    def embed(self, x: Tensor) -> Tensor:
        """(N, feature_dim) features of N images, tiles or clips, as the task's classifier reads them."""
        if self.head_stage is None:
            return self.encoder(x)
        return self.head_stage(self.encoder.feature_map(x))


class RotationPrediction(PretextTask):
    """Predict which of 0/90/180/270 degrees an image was rotated by (Gidaris et al. 2018); 4-way."""

    def __init__(self, encoder: nn.Module, hidden_dim: int = 256, conv_head: bool = True) -> None:
        super().__init__(encoder, conv_head)
        self.head = MLPHead([encoder.feature_dim, hidden_dim, 4])

    def forward(self, batch: Tensor) -> tuple[Tensor, dict]:
        x = to_unit_float(batch)
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"rotation prediction needs square images, got {x.shape[-2]}x{x.shape[-1]}")
        rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
        labels = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
        return _classify(self.head(self.embed(rotated)), labels)


class JigsawPuzzle(PretextTask):
    """Solve a shuffled ``grid`` x ``grid`` puzzle: classify which permutation of a fixed set was applied.

    The permutation set is chosen for maximal Hamming distance (:func:`maximal_hamming_permutations`).
    Tiles are standardized one by one (:func:`standardize_tiles`, unless ``standardize_tiles=False``),
    embedded one by one (a siamese "context-free network", Noroozi & Favaro 2016; see :class:`PretextTask`
    for ``conv_head``) and the concatenated features classified by an MLP.
    """

    permutations: Tensor

    def __init__(self, encoder: nn.Module, grid: int = 3, num_permutations: int = 64, hidden_dim: int = 512,
                 permutation_seed: int = 0, standardize_tiles: bool = True, conv_head: bool = True) -> None:
        super().__init__(encoder, conv_head)
        self.grid = grid
        self.standardize_tiles = standardize_tiles
        perms = maximal_hamming_permutations(num_permutations, grid * grid, permutation_seed)
        self.register_buffer("permutations", torch.from_numpy(perms))
        self.head = MLPHead([grid * grid * encoder.feature_dim, hidden_dim, num_permutations])

    def shuffle_tiles(self, tiles: Tensor, labels: Tensor) -> Tensor:
        """Reorder (B, K, ...) tiles so that position i of sample b shows tile ``permutations[labels[b], i]``."""
        order = self.permutations[labels]
        return tiles[torch.arange(tiles.shape[0], device=tiles.device)[:, None], order]

    def forward(self, batch: Tensor) -> tuple[Tensor, dict]:
        tiles = grid_tiles(to_unit_float(batch), self.grid)
        if self.standardize_tiles:
            tiles = standardize_tiles(tiles)
        b, k = tiles.shape[:2]
        labels = torch.randint(0, self.permutations.shape[0], (b,), device=tiles.device)
        shuffled = self.shuffle_tiles(tiles, labels)
        features = self.embed(shuffled.flatten(0, 1)).view(b, k * self.encoder.feature_dim)
        return _classify(self.head(features), labels)

    def tile_features(self) -> TileGridFeatures:
        """This task's encoder applied to whole images the way the task tiles them (for probing)."""
        return TileGridFeatures(self.encoder, self.grid, self.standardize_tiles)

    probe_features = tile_features  # what a probe embeds by default: the input the encoder is trained on


class RelativePosition(PretextTask):
    """Predict where a neighbouring tile lies relative to the centre tile of a 3x3 grid (Doersch et al. 2015); 8-way."""

    neighbours: Tensor

    def __init__(self, encoder: nn.Module, hidden_dim: int = 256, conv_head: bool = True) -> None:
        super().__init__(encoder, conv_head)
        self.register_buffer("neighbours", torch.tensor([0, 1, 2, 3, 5, 6, 7, 8]))
        self.head = MLPHead([2 * encoder.feature_dim, hidden_dim, 8])

    def forward(self, batch: Tensor) -> tuple[Tensor, dict]:
        tiles = grid_tiles(to_unit_float(batch), 3)
        b = tiles.shape[0]
        labels = torch.randint(0, 8, (b,), device=tiles.device)
        rows = torch.arange(b, device=tiles.device)
        pair = torch.cat([tiles[:, 4], tiles[rows, self.neighbours[labels]]])
        centre, neighbour = self.embed(pair).chunk(2)
        return _classify(self.head(torch.cat([centre, neighbour], dim=1)), labels)

    def tile_features(self) -> TileGridFeatures:
        """This task's encoder applied to whole images the way the task tiles them (for probing)."""
        return TileGridFeatures(self.encoder, 3)

    probe_features = tile_features
