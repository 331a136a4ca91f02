import pytest
import torch

from molssl.core.checkpoint import atomic_save, load_checkpoint, rng_state, seed_everything, set_rng_state
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
    with pytest.raises(ValueError, match="not a readable molssl checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


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
