"""What a vision run records (issue 21.2, 21.5): the full effective config and the molssl version; older
files completed with the defaults of the version that wrote them; preprocessing versions checked on load."""
import json

import pytest
import torch

import molssl
from molssl.errors import MolsslError
from molssl.vision.augment import AugmentConfig
from molssl.vision.data import load_mnist
from molssl.vision.pretrain import load_module, make_config, pretrain

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny():
    return load_mnist().subset(torch.arange(0, 5000, 250))  # 20 digits


def _run(method, tiny, out, **options):
    config = make_config(method, "mnist", epochs=1, batch_size=8, widths=(4,), options=options)
    pretrain(config, out, device=CPU, progress=False, train=tiny, log=lambda _: None)
    return config


def _as_unversioned(path, target, **overrides):
    """Rewrite a checkpoint's record the way molssl wrote it before versions were recorded: only the
    options that were given, no version, no preprocessing, and the old ``total_steps`` key."""
    ckpt = torch.load(path, weights_only=False)
    record = ckpt["config"]
    old = {key: record[key] for key in ("modality", "method", "data", "image_size", "channels", "widths", "epochs",
                                        "batch_size", "lr", "seed", "max_steps", "precision", "test_fraction",
                                        "split_seed")}
    ckpt["config"] = {**old, "options": {}, "augment": {}, "total_steps": 2, **overrides}
    torch.save(ckpt, target)
    return target


def test_runs_record_the_full_effective_config_and_version(tiny, tmp_path):
    _run("jigsaw", tiny, tmp_path, num_permutations=8)
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["molssl_version"] == molssl.__version__ and record["modality"] == "vision"
    assert record["preprocessing"] == 2
    assert record["options"] == {"grid": 3, "num_permutations": 8, "hidden_dim": 512, "permutation_seed": 0,
                                 "standardize_tiles": True, "conv_head": True}
    assert set(record["augment"]) == set(vars(AugmentConfig()))
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["config"] == record


@pytest.mark.parametrize("conv_head", [True, False])
def test_an_unversioned_pretext_file_gets_conv_head_from_its_weights_and_says_so_once(tiny, tmp_path, conv_head):
    _run("rotation", tiny, tmp_path / "run", conv_head=conv_head)
    old = _as_unversioned(tmp_path / "run" / "checkpoint.pt", tmp_path / f"old-{conv_head}.pt")
    messages = []
    module, config = load_module(old, CPU, log=messages.append)
    assert config.options["conv_head"] is conv_head and (module.head_stage is not None) is conv_head
    assert len(messages) == 1 and "did not record its version" in messages[0]
    assert f"options.conv_head={conv_head}" in messages[0] and "preprocessing=1" in messages[0]
    load_module(old, CPU, log=messages.append)
    assert len(messages) == 1  # said once


def test_a_preprocessing_mismatch_is_refused_with_one_sentence(tiny, tmp_path):
    _run("jigsaw", tiny, tmp_path / "run", num_permutations=8)
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    ckpt = torch.load(checkpoint, weights_only=False)
    ckpt["config"]["preprocessing"] = 1  # written before tiles were standardized
    torch.save(ckpt, tmp_path / "raw-tiles.pt")
    with pytest.raises(MolsslError, match=r"raw-tiles.pt was trained with jigsaw preprocessing version 1, but this "
                                          r"molssl uses version 2; re-train it"):
        load_module(tmp_path / "raw-tiles.pt", CPU)
    old = _as_unversioned(checkpoint, tmp_path / "old-jigsaw.pt", options={"num_permutations": 8})
    with pytest.raises(MolsslError, match="predates recorded preprocessing versions, and jigsaw's preprocessing has "
                                          "changed since"):
        load_module(old, CPU, log=lambda _: None)
    load_module(checkpoint, CPU)  # the run's own file loads


def test_an_unversioned_file_of_an_unchanged_method_loads(tiny, tmp_path):
    _run("simclr", tiny, tmp_path / "run")
    old = _as_unversioned(tmp_path / "run" / "checkpoint.pt", tmp_path / "old.pt")
    _, config = load_module(old, CPU, log=lambda _: None)
    assert config.preprocessing == 1 and config.options["temperature"] == 0.5
