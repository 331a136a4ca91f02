"""Applicability domain: metals, unseen elements and charges, long alkanes are flagged; training-like molecules are not;
fine-tuned model files carry the data, checked by a digest; older files predict without it."""
import numpy as np
import pytest
import torch
from rdkit import Chem

from molssl.chem.nn.similarity import tanimoto_matrix
from molssl.chem.serve.domain import ApplicabilityDomain, describe_smiles, domain_record
from molssl.chem.serve.loading import load_property_model, save_property_model
from molssl.chem.serve import reliability
from molssl.chem.serve.predict import Predictor
from molssl.core.checkpoint import CorruptFileError, load_checkpoint
from tiny_models import finetune_run, labelled_molecules

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALKANES = ["C" * n for n in range(2, 11)]
OUT_OF_DOMAIN = {
    "[Gd+3]": "atoms not in training: Gd+3",
    "N.N.Cl[Pt]Cl": "Pt",
    "CC(=O)[O-].[Na+]": "Na+",
    "C" * 42: "heavy_atoms 42 outside training",
    "C[Se]c1ccccc1": "atoms not in training: Se",
    "OB(O)c1ccccc1": "atoms not in training: B",
    "C[N+](C)(C)CCCC": "atoms not in training: N+",
}


@pytest.fixture(scope="module")
def domain():
    smiles = labelled_molecules()["smiles"].tolist() + ALKANES
    train, valid = smiles[::2], smiles[1::2]
    return ApplicabilityDomain([domain_record(train, list(range(0, len(smiles), 2)), valid)]), train, valid


def test_out_of_domain_molecules_are_flagged_with_the_reason(domain):
    model_domain, _, _ = domain
    found = model_domain.assess(describe_smiles(list(OUT_OF_DOMAIN)))
    assert not found.in_domain.any()
    for note, reason in zip(found.notes, OUT_OF_DOMAIN.values()):
        assert reason in note, (note, reason)
    alkane = list(OUT_OF_DOMAIN).index("C" * 42)
    assert found.similarity[alkane] == 1.0  # bits alone cannot tell C42 from decane: the range check does


def test_training_like_molecules_are_in_the_domain(domain):
    model_domain, train, valid = domain
    found = model_domain.assess(describe_smiles(train))
    assert found.in_domain.all() and np.allclose(found.similarity, 1.0)
    ring_systems = len(train) - len(ALKANES) // 2  # the alkanes share their bits: any of them is nearest
    assert [model_domain.smiles[i] for i in found.index][:ring_systems] == train[:ring_systems]
    on_valid = model_domain.assess(describe_smiles(valid))
    assert (on_valid.similarity >= model_domain.threshold).mean() >= 0.95  # the threshold: their 5th percentile


def test_similarity_is_the_packed_tanimoto_and_matches_rdkit(domain):
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    model_domain, train, _ = domain
    query = ["CCOc1ccccc1", "c1ccncc1CCCl", "CCCCCCO"]
    found = model_domain.assess(describe_smiles(query))
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    reference = [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in train]
    for i, s in enumerate(query):
        expected = max(DataStructs.BulkTanimotoSimilarity(generator.GetFingerprint(Chem.MolFromSmiles(s)), reference))
        assert found.similarity[i] == pytest.approx(expected, abs=1e-6)
    packed = torch.from_numpy(describe_smiles(query).fingerprints)
    np.testing.assert_allclose(tanimoto_matrix(packed, model_domain.fingerprints).max(1).values.numpy(),
                               found.similarity, atol=1e-7)


def test_invalid_rows_get_no_similarity(domain):
    found = domain[0].assess(describe_smiles(["CCO", "C1CC(", ""]))
    assert np.isnan(found.similarity[1:]).all() and not found.in_domain[1:].any()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return finetune_run(tmp_path_factory.mktemp("domain"), "regression", seeds=(0, 1))


def test_fine_tuned_models_carry_calibration_and_domain(run):
    for path in sorted(run.rglob("model.pt")):
        meta = load_property_model(path).meta
        assert meta["domain"]["fingerprints"].shape[1] == 256 and meta["domain"]["fingerprints"].dtype == np.uint8
        assert len(meta["domain"]["smiles"]) == len(meta["domain"]["rows"]) > 50
        assert 0.0 < meta["domain"]["threshold"] <= 1.0 and "C" in meta["domain"]["atom_kinds"]
        assert meta["calibration"]["y_pred"].shape == meta["calibration"]["y_true"].shape
    predictor = Predictor([run])
    assert not predictor.notes
    table = predictor.predict_smiles(["CCOc1ccccc1", "[Gd+3]"])
    assert table["run_regression_in_domain"].tolist() == [True, False]


def test_changed_domain_data_are_refused(run, tmp_path):
    path = next(run.rglob("model.pt"))
    blob = load_checkpoint(path)
    blob["domain"]["threshold"] = 0.0  # widen the domain behind the digest's back
    torch.save(blob, tmp_path / "model.pt")
    with pytest.raises(CorruptFileError, match="calibration / applicability-domain data"):
        load_property_model(tmp_path / "model.pt")


def test_files_made_before_the_records_still_predict(run, tmp_path):
    old = load_property_model(next(run.rglob("model.pt")))
    keep = {k: v for k, v in old.meta.items() if k not in ("calibration", "domain", "reliability_digest", "digest",
                                                            "format", "encoder_config", "tasks", "task_type")}
    save_property_model(old, tmp_path / "old" / "model.pt", keep)
    predictor = Predictor([tmp_path / "old" / "model.pt"], nearest=True)
    assert any("no interval" in n for n in predictor.notes) and any("no applicability" in n for n in predictor.notes)
    table = predictor.predict_smiles(["CCO", "C1CC("])
    assert list(table.columns) == ["smiles", "labelled", "status"] and np.isfinite(table["labelled"][0])


@pytest.mark.parametrize("tamper, found", [
    (lambda blob: blob["calibration"].update(y_pred=blob["calibration"]["y_pred"][:-1]), "predictions"),
    (lambda blob: blob["calibration"].update(like_test=torch.ones(3, dtype=torch.bool)), "mask of shape (3,)"),
    (lambda blob: blob["domain"].update(smiles=blob["domain"]["smiles"][:-1]), "fingerprint bytes"),
    (lambda blob: blob["domain"].update(threshold=float("nan")), "similarity threshold nan"),
])
def test_records_that_do_not_fit_together_are_refused_even_with_a_matching_digest(run, tmp_path, tamper, found):
    """A digest is no signature: a file made to mislead can carry one that matches; what does not fit is refused
    at load, with the file named, instead of failing (or answering) later."""
    blob = load_checkpoint(next(run.rglob("model.pt")))
    tamper(blob)
    blob.update(reliability.with_digest({key: blob[key] for key in reliability.KEYS}))
    torch.save(blob, tmp_path / "model.pt")
    with pytest.raises(CorruptFileError, match="do not fit together") as refused:
        load_property_model(tmp_path / "model.pt")
    assert found in str(refused.value) and str(tmp_path / "model.pt") in str(refused.value)
