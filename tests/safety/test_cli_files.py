"""Issue 18.12, 18.13, 18.15 and 18.16: truncated inputs, model files of the wrong kind, infinite labels and data
too small to split stop with exit 2 and one sentence that names the file and says what would help."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.nn.property_model import PropertyModel
from molssl.chem.serve.loading import save_property_model
from safety_helpers import SMILES, TINY_FINETUNE, TINY_PRETRAIN, refused

CSV_TASK = ["--targets", "y", "--task", "regression"]


def truncated_gzip(path: Path, text: str) -> Path:
    """``text`` gzipped into ``path`` with its last third cut off (as an interrupted download leaves it)."""
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    data = path.read_bytes()
    path.write_bytes(data[: 2 * len(data) // 3])
    return path


def many_rows(n: int = 20_000) -> list[str]:
    return [SMILES[i % len(SMILES)] for i in range(n)]


def test_truncated_gzip_corpus_is_named(molssl, tmp_path):
    path = truncated_gzip(tmp_path / "corpus.smi.gz", "\n".join(many_rows()) + "\n")
    refused(molssl("pretrain", "--smiles", path, "--out", tmp_path / "run", *TINY_PRETRAIN), path)


def test_truncated_gzip_csv_is_named(molssl, tmp_path):
    path = truncated_gzip(tmp_path / "mine.csv.gz", "smiles,y\n" + "".join(f"{s},{i % 7}\n"
                                                                       for i, s in enumerate(many_rows())))
    refused(molssl("finetune", "--csv", path, *CSV_TASK, *TINY_FINETUNE, "--out", tmp_path / "run"), path)
    refused(molssl("plot", "map", path, "--color-by", "y", "-o", tmp_path / "map.png"), path)


def test_truncated_data_set_file_is_an_error_not_aborted(molssl, tmp_path, shared_data):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    original = (shared_data / "moleculenet" / "BBBP.csv.gz").read_bytes()
    (data_dir / "BBBP.csv.gz").write_bytes(original[: len(original) // 2])
    refused(molssl("finetune", "--dataset", "bbbp", "--data-dir", data_dir, *TINY_FINETUNE, "--out", tmp_path / "run"),
            "truncated or damaged")
    fetched = molssl("data", "fetch", "bbbp", "--data-dir", data_dir)
    assert fetched.exit_code == 2 and "bbbp: error:" in fetched.stderr and "truncated" in fetched.stderr, \
        fetched.describe()


@pytest.fixture
def fine_tuned_model(tmp_path) -> Path:
    torch.manual_seed(0)
    model = PropertyModel(EncoderConfig(num_layers=2, emb_dim=8, feat_dim=8, proj_dim=4), ["y"], "regression",
                          "smiles", None, False)
    return save_property_model(model, tmp_path / "tuned" / "model.pt", {"dataset": "tiny"})


def test_fine_tuned_model_is_accepted_as_pretrained_encoder(molssl, tmp_path, labelled_csv, fine_tuned_model):
    args = [a if a != "none" else str(fine_tuned_model) for a in TINY_FINETUNE]
    result = molssl("finetune", "--csv", labelled_csv, *CSV_TASK, *args, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.describe()
    assert f"encoder of the fine-tuned model {fine_tuned_model}" in result.stderr


def resume_pretrain(molssl, corpus: Path, out: Path):
    return molssl("pretrain", "--smiles", corpus, "--out", out, "--max-steps", "2", "--resume", *TINY_PRETRAIN)


def test_encoder_copied_over_checkpoint_is_refused_on_resume(molssl, corpus, pretrain_run):
    shutil.copyfile(pretrain_run / "encoder.pt", pretrain_run / "checkpoint.pt")
    refused(resume_pretrain(molssl, corpus, pretrain_run), pretrain_run / "checkpoint.pt", "not a molssl")


@pytest.mark.parametrize("change, named", [
    (lambda ckpt: ckpt.update(optimizer={"state": 5, "param_groups": "x"}), "cannot be resumed"),
    (lambda ckpt: ckpt.pop("state"), "lacks state"),
    (lambda ckpt: ckpt.update(model={"nothing": torch.zeros(1)}), "do not fit"),
    (lambda ckpt: ckpt.update(rng={"python": None}, rng_per_rank=[{"python": None}]), "cannot be resumed"),
])
def test_malformed_checkpoints_are_refused_on_resume(molssl, corpus, pretrain_run, change, named):
    path = pretrain_run / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    ckpt.pop("digest", None)  # a file written without one (older molssl), so the contents themselves are checked
    torch.save(ckpt, path)
    refused(resume_pretrain(molssl, corpus, pretrain_run), path, named)


def test_encoder_copied_over_finetune_checkpoint_is_refused(molssl, tmp_path, labelled_csv, pretrain_run):
    out = tmp_path / "tuned_run"
    assert molssl("finetune", "--csv", labelled_csv, *CSV_TASK, *TINY_FINETUNE, "--out", out).exit_code == 0
    for name in ("results.json", "results.md", "seed_0/result.json"):  # as if it had been interrupted
        (out / name).unlink()
    shutil.copyfile(pretrain_run / "encoder.pt", out / "seed_0" / "checkpoint.pt")
    refused(molssl("finetune", "--csv", labelled_csv, *CSV_TASK, *TINY_FINETUNE, "--out", out, "--resume"),
            out / "seed_0" / "checkpoint.pt", "not a molssl training checkpoint")


def test_infinite_label_is_refused_with_its_line(molssl, tmp_path):
    path = tmp_path / "inf.csv"
    path.write_text("smiles,y\n" + "".join(f"{s},{i}\n" for i, s in enumerate(SMILES[:5])) + "CCCl,inf\n")
    refused(molssl("finetune", "--csv", path, *CSV_TASK, *TINY_FINETUNE, "--out", tmp_path / "run"), path, "line 7",
            "'inf'")


@pytest.mark.parametrize("rows, task, named", [
    ([("CCO", "1.0"), ("CCN", "2.0"), ("c1ccccc1", "3.0")], "regression", "too few"),
    ([(s, "") for s in SMILES * 5], "regression", "no molecule has a label in 'y'"),
    ([(s, "1" if i == 0 else "0") for i, s in enumerate(SMILES * 6)], "classification",
     "'y': 1 positive, 71 negative"),
])
def test_data_too_small_to_split_does_not_advise_another_split(molssl, tmp_path, rows, task, named):
    path = tmp_path / "small.csv"
    path.write_text("smiles,y\n" + "".join(f"{s},{y}\n" for s, y in rows))
    line = refused(molssl("finetune", "--csv", path, "--targets", "y", "--task", task, *TINY_FINETUNE,
                          "--out", tmp_path / "run"), named)
    assert "try another --split" not in line
