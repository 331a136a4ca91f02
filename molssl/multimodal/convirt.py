"""ConVIRT (Zhang et al. 2020): contrastive learning of image and text representations from paired data.

An image encoder and a text encoder each feed a non-linear projection head; the loss is ConVIRT's
bidirectional InfoNCE between the projections of the pairs in a batch
(:func:`molssl.core.losses.bidirectional_info_nce`): lambda = 0.75 on the image-to-text term and
temperature 0.1, the paper's values (Sec. 2.3 and 3). Here the images are RDKit depictions of molecules,
augmented in ways that keep the drawing legible, and the texts are randomized SMILES of the same molecules.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.core.heads import ProjectionHead
from molssl.core.losses import bidirectional_info_nce
from molssl.vision.data import to_unit_float


class ConVIRT(nn.Module):
    """Training module: ``forward((images, tokens))`` -> (loss, metrics). ``augment`` maps float images to one
    augmented view; ``encoder`` (images) and ``text_encoder`` (character tokens) expose ``feature_dim``."""

    def __init__(self, encoder: nn.Module, text_encoder: nn.Module, augment: nn.Module, proj_dim: int = 128,
                 temperature: float = 0.1, image_weight: float = 0.75) -> None:
        super().__init__()
        self.encoder = encoder
        self.text_encoder = text_encoder
        self.augment = augment
        self.image_head = ProjectionHead(encoder.feature_dim, encoder.feature_dim, proj_dim)
        self.text_head = ProjectionHead(text_encoder.feature_dim, text_encoder.feature_dim, proj_dim)
        self.temperature = temperature
        self.image_weight = image_weight

    def embed_images(self, images: Tensor, augment: bool = False) -> Tensor:
        """Projections (B, proj_dim) of uint8 or float images (augmented when ``augment``)."""
        x = to_unit_float(images)
        return self.image_head(self.encoder(self.augment(x) if augment else x))

    def embed_texts(self, tokens: Tensor) -> Tensor:
        return self.text_head(self.text_encoder(tokens))

    def forward(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict]:
        images, tokens = batch
        v, u = self.embed_images(images, augment=True), self.embed_texts(tokens)
        loss = bidirectional_info_nce(v, u, self.temperature, self.image_weight)
        with torch.no_grad():
            sims = F.normalize(v.float(), dim=1) @ F.normalize(u.float(), dim=1).t()
            top1 = (sims.argmax(dim=1) == torch.arange(sims.shape[0], device=sims.device)).float().mean()
        return loss, {"pos_cos": float(sims.diagonal().mean()), "batch_top1": float(top1)}
