"""Moving-digit videos and the video-folder loader."""
import numpy as np
import pytest
import torch
from PIL import Image

from molssl.video.data import DIRECTIONS, load_video_folder, moving_digits, read_video
from molssl.vision.data import ImageDataset


@pytest.fixture(scope="module")
def digits():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (24, 1, 28, 28), generator=g, dtype=torch.uint8)
    return ImageDataset(images, torch.arange(24) % 10, [str(d) for d in range(10)])


def test_each_frame_is_the_previous_one_moved_by_the_labelled_velocity(digits):
    speeds = (1, 3)
    videos = moving_digits(digits, frames=6, canvas=20, digit_size=12, speeds=speeds, seed=1)
    assert videos.videos.shape == (24, 6, 1, 20, 20)
    for i in range(24):
        dx, dy = DIRECTIONS[int(videos.labels["direction"][i])]
        s = speeds[int(videos.labels["speed"][i])]
        for t in range(5):
            assert torch.equal(videos.videos[i, t + 1], torch.roll(videos.videos[i, t], (s * dy, s * dx), dims=(1, 2)))
    assert torch.equal(videos.labels["digit"], digits.labels)
    assert len(videos.labels["direction"].unique()) > 4 and len(videos.labels["speed"].unique()) == 2
    # every frame shows the whole (wrapped) digit: pixel mass is conserved
    mass = videos.videos.float().sum(dim=(2, 3, 4))
    torch.testing.assert_close(mass, mass[:, :1].expand_as(mass))


def test_moving_digits_is_seeded_and_validates(digits):
    a = moving_digits(digits, seed=3)
    b = moving_digits(digits, seed=3)
    assert torch.equal(a.videos, b.videos)
    with pytest.raises(ValueError, match="digit_size"):
        moving_digits(digits, canvas=10, digit_size=12)


def _frames(n, size=10):
    return [np.full((size, size, 3), 20 * t, dtype=np.uint8) for t in range(n)]


def test_video_folder_reads_frame_folders_and_gifs(tmp_path):
    for cls in ("walk", "run"):
        for v in range(2):
            folder = tmp_path / cls / f"clip{v}"
            folder.mkdir(parents=True)
            for t, frame in enumerate(_frames(8)):
                Image.fromarray(frame).save(folder / f"{t:03d}.png")
    gif = [Image.fromarray(f) for f in _frames(10)]
    gif[0].save(tmp_path / "run" / "extra.gif", save_all=True, append_images=gif[1:], duration=40)
    data = load_video_folder(tmp_path, frames=4, size=6, channels=1)
    assert data.videos.shape == (5, 4, 1, 6, 6)
    assert data.classes["class"] == ["run", "walk"]
    assert data.labels["class"].tolist() == [0, 0, 0, 1, 1]
    # frames are subsampled evenly and in order: grey levels increase through each video
    levels = data.videos[:, :, 0, 0, 0].long()
    assert torch.all(levels[:, 1:] > levels[:, :-1])


def test_video_folder_errors_are_specific(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_video_folder(tmp_path / "nope")
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="no videos"):
        load_video_folder(tmp_path)
    (tmp_path / "a" / "movie.mp4").write_bytes(b"\x00")
    with pytest.raises(ValueError, match="ffmpeg"):
        read_video(tmp_path / "a" / "movie.mp4", 4, 8, 3)
    short = tmp_path / "a" / "short"
    short.mkdir()
    Image.fromarray(_frames(1)[0]).save(short / "0.png")
    with pytest.raises(ValueError, match="at least 4"):
        load_video_folder(tmp_path, frames=4)
