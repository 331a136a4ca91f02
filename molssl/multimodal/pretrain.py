"""Image-text runs: config, pre-training on core.fit, loading, retrieval among held-out molecules, image probes."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from molssl.core.checkpoint import load_weights, seed_everything
from molssl.core.fit import total_steps
from molssl.core.runs import config_from_record, fit_config_of, read_run, run_record, train_run
from molssl.core.trainer import TrainState
from molssl.errors import MolsslError
from molssl.multimodal.convirt import ConVIRT
from molssl.multimodal.data import PairBatches, Pairs, load_pairs, split_pairs
from molssl.multimodal.text import SmilesCNN, tokenize
from molssl.vision.augment import AugmentConfig, ImageAugment
from molssl.vision.encoders import ConvEncoder
from molssl.vision.features import probe_encoders

MODALITY = "multimodal"
PREPROCESSING = 1  # depiction drawing (molssl.vision.depictions.DEPICTION_VERSION) and SMILES tokenization
# Views that keep a drawing legible, after ConVIRT's image augmentation (Sec. 3): crops of 60-100% of the
# image, rotations up to 20 degrees, brightness and contrast jitter of 0.6-1.4 (jitter strength 0.5). No
# horizontal flip (it mirrors atom labels), no greyscale (element colours carry meaning), no blur (64 px
# letters would vanish).
LEGIBLE_AUGMENT = {"crop_scale": (0.6, 1.0), "flip_p": 0.0, "jitter_strength": 0.5, "jitter_p": 0.8,
                   "grayscale_p": 0.0, "blur_p": 0.0, "affine_p": 1.0, "rotation_degrees": 20.0}


@dataclass
class MultimodalConfig:
    """One ConVIRT run on depictions of the molecules of a SMILES file (``data``); ``molecules`` are drawn,
    ``test_molecules`` of them are held out (retrieval candidates and probe test set)."""

    data: str
    molecules: int = 12_500
    test_molecules: int = 1_000
    image_size: int = 64
    widths: tuple[int, ...] = (32, 64, 128, 128)
    text_width: int = 128
    text_layers: int = 3
    max_len: int = 128
    proj_dim: int = 128
    temperature: float = 0.1
    image_weight: float = 0.75
    augment: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_fraction: float = 0.05
    seed: int = 0
    split_seed: int = 0
    max_steps: Optional[int] = None
    precision: str = "fp32"
    preprocessing: int = PREPROCESSING
    method: str = "convirt"

    def __post_init__(self) -> None:
        if self.method != "convirt":
            raise ValueError(f"unknown image-text method {self.method!r}; choose convirt")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"the temperature must be a positive number (ConVIRT: 0.1), got {self.temperature}")
        if not 0.0 <= self.image_weight <= 1.0:
            raise ValueError(f"the image-to-text weight lambda must be in [0, 1] (ConVIRT: 0.75), got {self.image_weight}")
        self.widths = tuple(int(w) for w in self.widths)
        merged = AugmentConfig(**{**LEGIBLE_AUGMENT, **self.augment})
        self.augment = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(merged).items()}


def build_module(config: MultimodalConfig) -> ConVIRT:
    image_encoder = ConvEncoder(3, config.widths, (2,) * (len(config.widths) - 1) + (1,))
    text_encoder = SmilesCNN(width=config.text_width, layers=config.text_layers)
    augment = ImageAugment((config.image_size, config.image_size), 3, AugmentConfig(**config.augment))
    return ConVIRT(image_encoder, text_encoder, augment, config.proj_dim, config.temperature, config.image_weight)


def split_data(config: MultimodalConfig) -> tuple[Pairs, Pairs]:
    return split_pairs(load_pairs(config.data, config.molecules, config.image_size), config.test_molecules,
                       config.split_seed)


def pretrain(config: MultimodalConfig, out_dir: str | Path, *, device: torch.device, resume: bool = False,
             progress: bool = True, train: Optional[Pairs] = None,
             log: Callable[[str], None] = print) -> tuple[ConVIRT, TrainState]:
    """Pre-train ConVIRT on the training pairs; writes checkpoint.pt, metrics.jsonl and config.json to ``out_dir``."""
    if train is None:
        train, _ = split_data(config)
    source = PairBatches(train, config.batch_size, config.max_len, seed=config.seed)
    fit_config = fit_config_of(config, steps=total_steps(source, config.epochs, config.max_steps), progress=progress,
                               unit="pair")
    module, trainer = train_run(lambda _total: build_module(config), source, out_dir,
                                record=run_record(MODALITY, config), fit_config=fit_config, seed=config.seed,
                                device=device, resume=resume, log=log)
    return module, trainer.state


def random_init_module(config: MultimodalConfig) -> ConVIRT:
    """The module exactly as the run of ``config`` initialised it (same seed, same build)."""
    seed_everything(config.seed)
    return build_module(config)


def load_module(checkpoint: str | Path, device: torch.device,
                log: Callable[[str], None] = print) -> tuple[ConVIRT, MultimodalConfig]:
    weights, record = read_run(checkpoint, MODALITY, device, log)
    config = config_from_record(MultimodalConfig, record)
    if config.preprocessing != PREPROCESSING:
        raise MolsslError(f"{checkpoint} was trained with image-text preprocessing version {config.preprocessing}, but "
                          f"this molssl uses version {PREPROCESSING}; re-train it")
    module = build_module(config)
    load_weights(module, weights, checkpoint)
    return module.to(device).eval(), config


@torch.no_grad()
def embed_pairs(module: ConVIRT, pairs: Pairs, max_len: int, device: torch.device,
                batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalized projections (N, proj_dim) of the un-augmented images and the canonical SMILES."""
    module.to(device).eval()
    images, texts = [], []
    for start in range(0, len(pairs), batch_size):
        stop = min(start + batch_size, len(pairs))
        images.append(module.embed_images(pairs.images[start:stop].to(device)).float().cpu())
        texts.append(module.embed_texts(tokenize(pairs.smiles[start:stop], max_len).to(device)).float().cpu())
    return F.normalize(torch.cat(images), dim=1), F.normalize(torch.cat(texts), dim=1)


def retrieval_scores(images: torch.Tensor, texts: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy of image->text and text->image retrieval: row i of each is the other's i-th candidate."""
    sims = images @ texts.t()
    target = torch.arange(sims.shape[0])
    scores = {}
    for name, matrix in (("image_to_text", sims), ("text_to_image", sims.t())):
        rank = (matrix > matrix[target, target][:, None]).sum(dim=1)  # how many candidates score higher
        scores.update({f"{name}/top{k}": float((rank < k).float().mean()) for k in ks})
    return scores


def retrieve(modules: dict[str, ConVIRT], test: Pairs, config: MultimodalConfig, device: torch.device,
             candidates: int = 1000) -> dict[str, dict[str, float]]:
    """Per module: image->text and text->image top-1 / top-5 among the first ``candidates`` held-out molecules."""
    if not 2 <= candidates <= len(test):
        raise MolsslError(f"--candidates must be between 2 and the {len(test)} held-out molecules, got {candidates}")
    pool = test.subset(torch.arange(candidates))
    return {name: retrieval_scores(*embed_pairs(module, pool, config.max_len, device)) for name, module in modules.items()}


def probe(modules: dict[str, ConVIRT], train: Pairs, test: Pairs, device: torch.device,
          labels: Optional[Sequence[str]] = None, knn_k: int = 20) -> dict[str, dict[str, float]]:
    """Per module: linear-probe and k-NN accuracy of its frozen image encoder on the chemistry labels
    (fit on the training depictions, scored on the held-out ones)."""
    encoders = {name: module.encoder for name, module in modules.items()}
    return probe_encoders(encoders, train.as_images(), test.as_images(), device, knn_k, labels)
