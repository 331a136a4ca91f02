"""Masked autoencoders (He et al. 2022) with a small vision transformer.

The encoder embeds non-overlapping patches, adds fixed 2D sine-cosine positions and runs pre-norm
transformer blocks on the *visible* patches only (75% are masked at random per image). A light decoder
gets the encoded visible tokens back in place, a shared learned mask token everywhere else (plus its
own positions), and reconstructs the pixels of every patch; the loss is the mean squared error on the
masked patches, against each patch's pixels normalized by their own mean and variance (He et al.,
Sec. 3 and Table 1c). Probes read the encoder's mean token over all patches of an unmasked image.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from molssl.vision.data import to_unit_float


def sincos_positions(rows: int, cols: int, dim: int) -> Tensor:
    """Fixed 2D sine-cosine position embeddings (rows * cols, dim): half the channels encode the row, half the column."""
    if dim % 4:
        raise ValueError(f"the embedding width must be a multiple of 4 for 2D sin-cos positions, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)

    def encode(positions: Tensor) -> Tensor:
        angles = positions.double()[:, None] * omega[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    return torch.cat([encode(r.flatten()), encode(c.flatten())], dim=1).float()


def _blocks(dim: int, depth: int, heads: int, mlp_ratio: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


class VisionTransformer(nn.Module):
    """A small ViT encoder; ``forward(images)`` -> the mean of its output tokens, (B, dim)."""

    positions: Tensor

    def __init__(self, image_size: Sequence[int], channels: int, patch_size: int = 4, dim: int = 128,
                 depth: int = 4, heads: int = 4, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        h, w = int(image_size[0]), int(image_size[1])
        if h % patch_size or w % patch_size:
            raise ValueError(f"patch size {patch_size} must divide the image size {h}x{w}")
        self.grid = (h // patch_size, w // patch_size)
        self.patch_size, self.channels, self.feature_dim = patch_size, channels, dim
        self.patch_embed = nn.Conv2d(channels, dim, patch_size, stride=patch_size)
        self.register_buffer("positions", sincos_positions(*self.grid, dim), persistent=False)
        self.blocks = _blocks(dim, depth, heads, mlp_ratio)
        self.norm = nn.LayerNorm(dim)

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def tokens(self, images: Tensor) -> Tensor:
        """Patch embeddings plus positions, (B, L, dim), in row-major patch order."""
        return self.patch_embed(images).flatten(2).transpose(1, 2) + self.positions

    def encode(self, tokens: Tensor) -> Tensor:
        """The transformer on any subset of tokens (B, L', dim) -> (B, L', dim)."""
        return self.norm(self.blocks(tokens))

    def forward(self, images: Tensor) -> Tensor:
        return self.encode(self.tokens(images)).mean(dim=1)


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """(B, C, H, W) -> (B, L, patch_size**2 * C), patches in row-major order."""
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def random_keep(batch: int, patches: int, mask_ratio: float, device: torch.device) -> tuple[Tensor, Tensor]:
    """Per image, the indices of the patches kept visible (B, n_keep; random order) and the mask (B, L; True = masked)."""
    keep = max(1, int(round(patches * (1.0 - mask_ratio))))
    order = torch.rand(batch, patches, device=device).argsort(dim=1)
    kept = order[:, :keep]
    mask = torch.ones(batch, patches, dtype=torch.bool, device=device)
    mask.scatter_(1, kept, False)
    return kept, mask


class MAE(nn.Module):
    """Masked-autoencoder training module. He et al.: mask ratio 0.75 (Sec. 4, Fig. 5), normalized-pixel
    targets (Table 1c), a decoder narrower and shallower than the encoder (Table 1a-b: 512-d, 8 blocks for
    ViT-L; here ``decoder_dim`` 64, ``decoder_depth`` 1 for a 128-d, 4-block encoder)."""

    def __init__(self, encoder: VisionTransformer, mask_ratio: float = 0.75, decoder_dim: int = 64,
                 decoder_depth: int = 1, decoder_heads: int = 4, norm_pix_loss: bool = True) -> None:
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.encoder = encoder
        self.mask_ratio, self.norm_pix_loss = mask_ratio, norm_pix_loss
        self.decoder_embed = nn.Linear(encoder.feature_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.register_buffer("decoder_positions", sincos_positions(*encoder.grid, decoder_dim), persistent=False)
        self.decoder = _blocks(decoder_dim, decoder_depth, decoder_heads, 2.0)
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, encoder.patch_size ** 2 * encoder.channels)

    def reconstruct(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Predicted pixels of every patch (B, L, p*p*C) and the mask (B, L; True = masked)."""
        tokens = self.encoder.tokens(images)
        b, length, dim = tokens.shape
        kept, mask = random_keep(b, length, self.mask_ratio, images.device)
        visible = tokens.gather(1, kept[..., None].expand(-1, -1, dim))
        latent = self.decoder_embed(self.encoder.encode(visible))
        full = self.mask_token.to(latent.dtype).expand(b, length, -1).clone()
        full.scatter_(1, kept[..., None].expand(-1, -1, latent.shape[-1]), latent)
        decoded = self.decoder_norm(self.decoder(full + self.decoder_positions))
        return self.decoder_pred(decoded), mask

    def forward(self, batch: Tensor) -> tuple[Tensor, dict]:
        images = to_unit_float(batch)
        prediction, mask = self.reconstruct(images)
        target = patchify(images, self.encoder.patch_size)
        if self.norm_pix_loss:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = (prediction.float() - target).pow(2).mean(dim=-1)
        loss = per_patch[mask].mean()
        return loss, {"visible_loss": float(per_patch[~mask].mean().detach())}


def vit_options() -> tuple[str, ...]:
    """The :class:`VisionTransformer` options a run config may set (the rest come from the data)."""
    import inspect

    return tuple(p for p in inspect.signature(VisionTransformer.__init__).parameters
                 if p not in ("self", "image_size", "channels"))

