"""Pretext-task building blocks: tiles, Hamming permutation sets, labels of rotation/jigsaw/context."""
import itertools

import numpy as np
import pytest
import torch

from molssl.vision.encoders import ConvEncoder
from molssl.vision.permutations import maximal_hamming_permutations
from molssl.vision.pretext import (JigsawPuzzle, RelativePosition, RotationPrediction, TileGridFeatures, grid_tiles,
                                   standardize_tiles)


def _pairwise_min_distance(perms):
    return min(int((p != q).sum()) for p, q in itertools.combinations(perms, 2))


@pytest.mark.parametrize("n, count", [(4, 4), (9, 9), (5, 3)])
def test_up_to_n_permutations_differ_in_every_position(n, count):
    perms = maximal_hamming_permutations(count, n, seed=1)
    assert perms.shape == (count, n)
    assert all(sorted(p) == list(range(n)) for p in perms.tolist())
    assert _pairwise_min_distance(perms) == n


def test_larger_sets_are_distinct_spread_out_and_seeded():
    perms = maximal_hamming_permutations(64, 9, seed=0)
    assert len({tuple(p) for p in perms.tolist()}) == 64
    assert _pairwise_min_distance(perms) >= 7
    # a random set of 64 permutations is much closer together
    rng = np.random.default_rng(0)
    assert _pairwise_min_distance(np.stack([rng.permutation(9) for _ in range(64)])) < 7
    np.testing.assert_array_equal(maximal_hamming_permutations(64, 9, seed=0), perms)
    with pytest.raises(ValueError, match="count"):
        maximal_hamming_permutations(25, 4)


def test_grid_tiles_without_gap_are_the_cells():
    x = torch.arange(2 * 2 * 12 * 12, dtype=torch.float32).view(2, 2, 12, 12)
    tiles = grid_tiles(x, 3, gap=0)
    assert tiles.shape == (2, 9, 2, 4, 4)
    for k in range(9):
        r, c = divmod(k, 3)
        torch.testing.assert_close(tiles[:, k], x[:, :, 4 * r:4 * r + 4, 4 * c:4 * c + 4])


def test_grid_tiles_with_gap_stay_inside_their_cell():
    torch.manual_seed(0)
    x = torch.arange(28 * 28, dtype=torch.float32).view(1, 1, 28, 28).repeat(8, 1, 1, 1)
    tiles = grid_tiles(x, 3)  # cell 9, gap 2, tile 7
    assert tiles.shape == (8, 9, 1, 7, 7)
    corner = tiles[:, :, 0, 0, 0]  # top-left pixel of every tile
    rows, cols = corner // 28, corner % 28
    cell_r = torch.arange(9).div(3, rounding_mode="floor") * 9
    cell_c = torch.arange(9) % 3 * 9
    assert torch.all((rows - cell_r >= 0) & (rows - cell_r <= 2) & (cols - cell_c >= 0) & (cols - cell_c <= 2))
    assert len(torch.unique(tiles[:, 0, 0, 0, 0])) > 1  # offsets vary between images
    with pytest.raises(ValueError, match="too small"):
        grid_tiles(torch.zeros(1, 1, 6, 6), 3)


def test_grid_tiles_without_jitter_sit_in_the_middle_of_their_cells():
    x = torch.rand(2, 1, 28, 28)
    tiles = grid_tiles(x, 3, jitter=False)  # cell 9, gap 2, tile 7: offset 1
    assert tiles.shape == (2, 9, 1, 7, 7)
    for k in range(9):
        r, c = divmod(k, 3)
        torch.testing.assert_close(tiles[:, k], x[:, :, 9 * r + 1:9 * r + 8, 9 * c + 1:9 * c + 8])


def test_standardized_tiles_have_zero_mean_unit_spread_and_blank_tiles_stay_zero():
    torch.manual_seed(0)
    tiles = torch.rand(4, 9, 2, 5, 5) * torch.linspace(0.2, 3.0, 9).view(1, 9, 1, 1, 1) + 1.0
    tiles[0, 3] = 0.7  # a blank tile
    out = standardize_tiles(tiles)
    flat = out.flatten(2)
    torch.testing.assert_close(flat.mean(2), torch.zeros(4, 9), atol=1e-5, rtol=0)
    raw_std = tiles.flatten(2).std(2)
    torch.testing.assert_close(flat.std(2), raw_std / (raw_std + 0.05))  # unit spread, damped by eps on flat tiles
    assert flat.std(2)[:, -1].min() > 0.9  # high-contrast tiles: close to 1
    assert torch.equal(out[0, 3], torch.zeros(2, 5, 5))
    # a tile's scale and offset do not change its standardized content (up to the eps)
    torch.testing.assert_close(standardize_tiles(tiles * 10 + 3)[1:], standardize_tiles(tiles * 10)[1:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("standardize", [False, True])
def test_tile_grid_features_concatenate_the_centred_tiles_in_grid_order(standardize):
    torch.manual_seed(0)
    encoder = ConvEncoder(1, (4, 6)).eval()
    x = torch.rand(3, 1, 28, 28)
    features = TileGridFeatures(encoder, 3, standardize)
    assert features.feature_dim == 54
    out = features(x)
    tiles = grid_tiles(x, 3, jitter=False)
    if standardize:
        tiles = standardize_tiles(tiles)
    expected = torch.cat([encoder(tiles[:, k]) for k in range(9)], dim=1)
    torch.testing.assert_close(out, expected)


def test_tile_tasks_probe_the_tiles_they_train_on():
    jigsaw = JigsawPuzzle(ConvEncoder(1, (4,)), grid=2, num_permutations=6)
    view = jigsaw.tile_features()
    assert view.encoder is jigsaw.encoder and view.grid == 2 and view.standardize
    assert not JigsawPuzzle(ConvEncoder(1, (4,)), num_permutations=6, standardize_tiles=False).tile_features().standardize
    context = RelativePosition(ConvEncoder(1, (4,))).tile_features()
    assert context.grid == 3 and not context.standardize


def test_jigsaw_standardizes_the_tiles_it_embeds():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 12, 12) * 0.5 + 0.25
    for standardize in (True, False):
        encoder = _Probe()
        JigsawPuzzle(encoder, num_permutations=6, standardize_tiles=standardize)(x)
        tile_means = encoder.seen.flatten(1).mean(1).abs()
        assert torch.all(tile_means < 1e-5) if standardize else torch.all(tile_means > 0.2)


def test_jigsaw_shuffle_follows_the_permutation_table():
    model = JigsawPuzzle(ConvEncoder(1, (4,)), num_permutations=10)
    tiles = torch.arange(9.0).view(1, 9, 1, 1, 1).repeat(10, 1, 1, 1, 1)
    labels = torch.arange(10)
    shuffled = model.shuffle_tiles(tiles, labels)
    assert torch.equal(shuffled.view(10, 9).long(), model.permutations)


class _Probe(torch.nn.Module):
    """A stand-in encoder that records its input."""

    feature_dim = 2

    def feature_map(self, x):
        self.seen = x.detach().clone()
        return x.mean(1, keepdim=True).expand(-1, 2, -1, -1)

    def forward(self, x):
        return self.feature_map(x).mean((2, 3))


@pytest.mark.parametrize("conv_head", [True, False])
def test_rotation_batch_holds_four_rotations_in_label_order(conv_head):
    encoder = _Probe()
    x = torch.rand(3, 1, 5, 5)
    RotationPrediction(encoder, conv_head=conv_head)(x)
    for k in range(4):
        torch.testing.assert_close(encoder.seen[3 * k:3 * k + 3], torch.rot90(x, k, dims=(2, 3)))
    with pytest.raises(ValueError, match="square"):
        RotationPrediction(_Probe(), conv_head=conv_head)(torch.rand(2, 1, 4, 6))


@pytest.mark.parametrize("task", [RotationPrediction, JigsawPuzzle, RelativePosition])
def test_pretext_classifiers_start_with_a_conv_stage_on_the_feature_map(task):
    options = {"num_permutations": 6} if task is JigsawPuzzle else {}
    torch.manual_seed(0)
    model = task(ConvEncoder(1, (4, 8)), **options)
    seen = []
    model.head_stage.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[1:]))
    loss, _ = model(torch.rand(3, 1, 12, 12))
    assert seen == [torch.Size([8, 6, 6]) if task is RotationPrediction else torch.Size([8, 2, 2])]  # unpooled maps
    loss.backward()
    assert model.head_stage.net[0].weight.grad.abs().sum() > 0
    assert task(ConvEncoder(1, (4, 8)), conv_head=False, **options).head_stage is None
    with pytest.raises(ValueError, match="feature_map"):
        task(torch.nn.Sequential(torch.nn.Flatten()), **options)


def test_context_pairs_centre_with_a_neighbour():
    torch.manual_seed(0)
    encoder = _Probe()
    x = torch.zeros(6, 1, 12, 12)
    x[:, :, 4:8, 4:8] = 1.0  # only the centre cell is bright
    _, metrics = RelativePosition(encoder)(x)
    centre, neighbour = encoder.seen.chunk(2)
    assert torch.all(centre.flatten(1).mean(1) > 0.2) and torch.all(neighbour == 0)
    assert 0.0 <= metrics["acc"] <= 1.0
