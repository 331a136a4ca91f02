import gzip

import pytest
import torch

from molssl.core import checkpoint
from molssl.core.checkpoint import (GZIP_MAGIC, CorruptFileError, atomic_save, load_checkpoint, rng_state,
                                    seed_everything, set_rng_state)
from molssl.core.device import autocast, move_to, resolve_device
from molssl.core.schedules import warmup_cosine


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle")


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "ckpt.pt"
    atomic_save({"step": 1}, path)
    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_save({"step": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary left behind


def test_load_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_bare_pickle_is_refused_as_not_a_torch_file_and_runs_nothing(tmp_path, capsys):
    import pickle

    path = tmp_path / "model.pth"
    path.write_bytes(pickle.dumps({"state_dict": _RunsCode()}))  # protocol 4+, what pickle.dump writes
    with pytest.raises(ValueError, match=r"model\.pth is not a readable checkpoint: not a file that torch\.save wrote"):
        load_checkpoint(path)
    assert "must never run" not in capsys.readouterr().out


def test_rng_state_round_trip():
    seed_everything(5)
    state = rng_state()
    a = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(torch.rand(3), a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_rng_state_restores_from_a_checkpoint_loaded_onto_the_gpu(tmp_path):
    # found on an H200: a checkpoint read with map_location="cuda" put the generator states on the GPU,
    # and resuming failed ("can't convert cuda:0 device type tensor to numpy")
    seed_everything(5)
    atomic_save({"rng": rng_state()}, tmp_path / "ckpt.pt")
    expected = torch.rand(3), torch.rand(3, device="cuda")
    state = load_checkpoint(tmp_path / "ckpt.pt", map_location="cuda")["rng"]
    assert state["torch"].device.type == "cuda"
    set_rng_state(state)
    assert torch.equal(torch.rand(3), expected[0]) and torch.equal(torch.rand(3, device="cuda"), expected[1])


def test_warmup_then_cosine():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, warmup_steps=4, total_steps=14)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[9] == pytest.approx(0.5)  # half-way through the cosine
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))


def test_device_helpers():
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
        with pytest.raises(ValueError, match="fp16 autocast needs a CUDA device"):
            autocast(torch.device("cpu"), "fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        autocast(torch.device("cpu"), "fp8")
    moved = move_to({"a": torch.ones(2), "b": [torch.zeros(1), 3]}, torch.device("cpu"))
    assert torch.equal(moved["a"], torch.ones(2)) and moved["b"][1] == 3


def test_compressed_checkpoint_round_trip_is_smaller_and_byte_stable(tmp_path):
    blob = {"w": torch.zeros(64, 64, dtype=torch.int8), "meta": {"name": "x", "scale": 0.5}}
    atomic_save(blob, tmp_path / "plain.pt")
    atomic_save(blob, tmp_path / "a.pt", compress=True)
    atomic_save(blob, tmp_path / "b.pt", compress=True)
    assert (tmp_path / "a.pt").read_bytes()[:2] == GZIP_MAGIC
    assert (tmp_path / "a.pt").stat().st_size < (tmp_path / "plain.pt").stat().st_size
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()  # no timestamp: same sha256
    loaded = load_checkpoint(tmp_path / "a.pt")
    assert torch.equal(loaded["w"], blob["w"]) and loaded["meta"] == blob["meta"]


def _compressed(tmp_path):
    path = tmp_path / "c.pt"
    atomic_save({"w": torch.arange(5000, dtype=torch.float32)}, path, compress=True)
    return path, path.read_bytes()


def test_truncated_compressed_checkpoint_is_refused(tmp_path):
    path, data = _compressed(tmp_path)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="truncated gzip"):
        load_checkpoint(path)


def test_damaged_compressed_checkpoint_is_refused(tmp_path):
    path, data = _compressed(tmp_path)
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptFileError, match="damaged gzip|not a readable"):
        load_checkpoint(path)
    path.write_bytes(data + b"tail")
    with pytest.raises(CorruptFileError, match="after its gzip stream"):
        load_checkpoint(path)


def test_compressed_checkpoint_inflating_past_the_limit_is_refused_before_unpacking(tmp_path, monkeypatch):
    path = tmp_path / "bomb.pt"
    path.write_bytes(gzip.compress(bytes(4 << 20)))  # 4 MiB of zeros in ~4 kB
    monkeypatch.setattr(checkpoint, "MAX_INFLATED_BYTES", 1 << 20)
    with pytest.raises(CorruptFileError, match="inflates to more than 1 MiB"):
        load_checkpoint(path)
