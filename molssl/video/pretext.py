"""Shuffle and learn: frame-order verification (Misra et al. 2016)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.core.heads import MLPHead
from molssl.video.augment import to_clips
from molssl.vision.pretext import PretextTask


def sample_order_tuples(batch: int, frames: int, device: torch.device | str = "cpu",
                        window: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """Frame indices (B, 3) and labels (B,): 1 for a correctly ordered tuple, 0 for a shuffled one.

    Following Misra et al. (Sec. 3.1), five frames a < b < c < d < e are drawn per video, here from a random
    ``window`` of consecutive frames (the whole video by default; a short window keeps the motion between
    the frames small, as the paper's sampling from short high-motion windows does). A positive is
    (b, c, d), a negative (b, a, d) or (b, e, d). Half the tuples are positive, and every tuple is
    reversed with probability 1/2 (the order is verified up to the direction of time, as in the paper).
    """
    if frames < 5:
        raise ValueError(f"frame-order verification needs videos of at least 5 frames, got {frames}")
    window = frames if window is None else window
    if not 5 <= window <= frames:
        raise ValueError(f"the frame window must be between 5 and the video length {frames}, got {window}")
    offset = torch.randint(0, frames - window + 1, (batch, 1))
    picks = torch.rand(batch, window).argsort(dim=1)[:, :5].sort(dim=1).values + offset
    a, b, c, d, e = picks.unbind(1)
    labels = (torch.rand(batch) < 0.5).long()
    wrong_middle = torch.where(torch.rand(batch) < 0.5, a, e)
    middle = torch.where(labels.bool(), c, wrong_middle)
    tuples = torch.stack([b, middle, d], dim=1)
    reverse = torch.rand(batch) < 0.5
    tuples[reverse] = tuples[reverse].flip(1)
    return tuples.to(device), labels.to(device)


class FrameOrderVerification(PretextTask):
    """Binary classification of whether a 3-frame tuple is in temporal order.

    Misra et al. embed each frame with a siamese 2D network and concatenate; here the tuple is fed as a
    3-frame clip to the same 3D-CNN encoder that CVRL trains, so the learned encoder is the one that is
    probed. The optional ``augment`` is applied with one parameter set per tuple. ``conv_head``: the
    classifier starts with its own 3D conv stage on the encoder's feature map (see :class:`PretextTask`).
    """

    def __init__(self, encoder: nn.Module, augment: Optional[nn.Module] = None, hidden_dim: int = 128,
                 window: Optional[int] = None, conv_head: bool = True) -> None:
        super().__init__(encoder, conv_head)
        self.window = window
        self.augment = augment
        self.head = MLPHead([encoder.feature_dim, hidden_dim, 2])

    def forward(self, videos: Tensor) -> tuple[Tensor, dict]:
        frames, labels = sample_order_tuples(videos.shape[0], videos.shape[1], videos.device, self.window)
        rows = torch.arange(videos.shape[0], device=videos.device).view(-1, 1)
        clips = to_clips(videos[rows, frames])
        if self.augment is not None:
            clips = self.augment(clips)
        logits = self.head(self.embed(clips))
        loss = F.cross_entropy(logits.float(), labels)
        return loss, {"acc": float((logits.argmax(1) == labels).float().mean())}
