"""Older run records get the defaults of the molssl version that wrote them, said once per file."""
import pytest

from molssl.core.config_compat import DefaultChange, fill_defaults, parse_version, register_changes, with_version

register_changes("compat-test", [
    DefaultChange("options.head", "0.2.0", "mlp", applies=lambda saved: saved.get("method") == "a"),
    DefaultChange("scale", "0.3.0", lambda saved, context: context.get("width", 0) * 2),
])


def test_versions_compare_as_numbers_and_unversioned_is_oldest():
    assert parse_version("0.10.0") > parse_version("0.9.1") > parse_version(None) == ()
    assert parse_version("1.2.3+local") == (1, 2, 3)


def test_fields_missing_from_older_files_get_the_writers_defaults():
    saved = {"method": "a", "options": {}}
    filled = fill_defaults("compat-test", saved, None, lambda _: None, context={"width": 4}, source="a.pt")
    assert filled == {"method": "a", "options": {"head": "mlp"}, "scale": 8}
    assert saved == {"method": "a", "options": {}}  # the caller's dict is left alone
    assert fill_defaults("compat-test", saved, "0.2.0", lambda _: None, context={"width": 1})["options"] == {}
    assert fill_defaults("compat-test", saved, "0.3.0", lambda _: None) == saved  # today's files: nothing to fill
    assert fill_defaults("compat-test", {"method": "b"}, None, lambda _: None) == {"method": "b", "scale": 0}


def test_recorded_values_win_and_the_fill_is_reported_once_per_file():
    messages = []
    saved = {"method": "a", "options": {"head": "conv"}}
    first = fill_defaults("compat-test", saved, "0.1.0", messages.append, source="run/checkpoint.pt")
    fill_defaults("compat-test", saved, "0.1.0", messages.append, source="run/checkpoint.pt")
    assert first["options"]["head"] == "conv" and first["scale"] == 0
    assert messages == ["run/checkpoint.pt was written by molssl 0.1.0; using that version's defaults for scale=0"]


def test_records_carry_the_running_version():
    import molssl

    assert with_version({"a": 1}) == {"a": 1, "molssl_version": molssl.__version__}


def test_unknown_kinds_are_returned_unchanged():
    assert fill_defaults("no-such-kind", {"x": 1}, None, pytest.fail) == {"x": 1}
