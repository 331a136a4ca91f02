"""Image datasets, the image-folder loader and the deterministic batch source."""
import numpy as np
import pytest
import torch
from PIL import Image

from molssl.vision.data import (ImageDataset, TensorBatchSource, load_dataset, load_digits, load_image_folder,
                                load_mnist, to_unit_float)


def test_mnist_subset_is_real_and_balanced():
    data = load_mnist()
    assert data.images.shape == (5000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert torch.bincount(data.labels).tolist() == [500] * 10
    assert data.images.float().mean() > 10  # real strokes, not an empty placeholder


def test_sklearn_digits_are_rescaled_to_uint8():
    data = load_digits()
    assert data.images.shape == (1797, 1, 8, 8)
    assert int(data.images.max()) == 255 and int(data.images.min()) == 0


def test_split_is_stratified_disjoint_and_seeded():
    data = load_digits()
    train, test = data.split(0.25, seed=3)
    assert len(train) + len(test) == len(data)
    fractions = torch.bincount(test.labels, minlength=10).float() / torch.bincount(data.labels, minlength=10).float()
    assert torch.all((fractions - 0.25).abs() < 0.02)
    again, _ = data.split(0.25, seed=3)
    assert torch.equal(again.images, train.images)
    with pytest.raises(ValueError, match="test_fraction"):
        data.split(1.5)


def _write_folder(root, colour):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            shape = (20, 30, 3) if colour else (20, 30)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / cls / f"{i}.png")
    (root / "cat" / "notes.txt").write_text("not an image")


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_loader_resizes_and_labels(tmp_path, channels):
    _write_folder(tmp_path, colour=True)
    data = load_image_folder(tmp_path, image_size=(12, 16), channels=channels)
    assert data.images.shape == (6, channels, 12, 16)
    assert data.classes == ["cat", "dog"] and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert load_dataset(str(tmp_path), (12, 16), channels).images.shape == data.images.shape


def test_image_folder_errors_are_specific(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match="no images"):
        load_image_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="mnist"):
        load_dataset("cifar-100")


def test_dataset_validates_shapes():
    with pytest.raises(ValueError, match="uint8"):
        ImageDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), ["a"])
    with pytest.raises(ValueError, match="one label per image"):
        ImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), ["a"])


def test_batch_source_is_deterministic_resumable_and_covers_each_epoch():
    data = torch.arange(10).view(10, 1)
    source = TensorBatchSource(data, batch_size=3, seed=1)
    assert len(source) == 3
    epoch0 = [b.clone() for b in source.batches(0)]
    assert [b.tolist() for b in source.batches(0)] == [b.tolist() for b in epoch0]
    assert [b.tolist() for b in source.batches(0, start=2)] == [epoch0[2].tolist()]
    assert len(torch.cat(epoch0).unique()) == 9  # drop_last: 9 distinct rows per epoch
    assert torch.cat(epoch0).tolist() != torch.cat(list(source.batches(1))).tolist()
    assert len(TensorBatchSource(data, 3, drop_last=False)) == 4
    with pytest.raises(ValueError, match="larger than"):
        TensorBatchSource(data, 11)


def test_to_unit_float():
    assert to_unit_float(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [0.0, 1.0]
    with pytest.raises(TypeError):
        to_unit_float(torch.tensor([1, 2]))
