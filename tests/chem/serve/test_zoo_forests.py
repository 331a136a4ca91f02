"""A shipped fold ensemble given forests (benchmarks/zoo_forests.py): each member's forests are fitted on its own
training molecules, its calibration is predicted again with them, and the card it writes is what users then get."""
import shutil

import numpy as np
import pytest

from molssl.chem.serve import zoo
from molssl.chem.serve.card_check import card_test_split, disagreements, measure
from molssl.chem.serve.loading import load_shipped_members
from molssl.chem.serve.zoo_forests import add_forests
from molssl.errors import MolsslError


@pytest.mark.slow
def test_forests_added_to_a_copy_of_bace_give_the_card_users_get(shared_data, tmp_path, monkeypatch):
    for name in ("bace", "esol"):
        shutil.copytree(zoo.model_folder(name), tmp_path / name)
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path)
    before = zoo.get_card("bace")
    _, old = load_shipped_members("bace")
    data_dir = shared_data / "moleculenet"
    card = add_forests("bace", str(data_dir), trees=5, leaves=4, command="python benchmarks/zoo_forests.py bace")
    _, members = load_shipped_members("bace")
    assert all(m.forests is not None and m.forests.spec["ecfp2048"]["trees"] == 5 for m in members)
    for member, previous in zip(members, old):  # each member's forests read the molecules it was trained on
        assert np.array_equal(member.meta["domain"]["rows"], previous.meta["domain"]["rows"])
        assert not np.allclose(member.meta["calibration"]["y_pred"], previous.meta["calibration"]["y_pred"])
    assert f"the GNN members alone score {before.test_score:.4f}" in card.notes
    assert card.test_score != before.test_score and card.commands[-1] == "python benchmarks/zoo_forests.py bace"
    smiles, labels = card_test_split(card, data_dir)
    assert disagreements(card, measure("bace", smiles, labels, "fp32")) == []
    with pytest.raises(MolsslError, match="already carries forests"):
        add_forests("bace", str(data_dir))
    with pytest.raises(MolsslError, match="scaffold-split classifiers only"):
        add_forests("esol", str(data_dir))
