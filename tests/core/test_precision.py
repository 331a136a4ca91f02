import json

from molssl.core import precision


def _fake_cpu(monkeypatch, flags):
    monkeypatch.setattr(precision, "cpu_description", lambda: ("Test CPU", set(flags)))


def test_no_bf16_flags_means_fp32_without_probing(monkeypatch, tmp_path):
    monkeypatch.setenv("MOLSSL_CACHE", str(tmp_path))
    _fake_cpu(monkeypatch, ["avx2"])
    monkeypatch.setattr(precision, "probe_bf16_speedup", lambda: (_ for _ in ()).throw(AssertionError("probed")))
    assert precision.cpu_precision()[0] == "fp32"


def test_probe_decides_and_is_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("MOLSSL_CACHE", str(tmp_path))
    _fake_cpu(monkeypatch, ["avx512_bf16"])
    calls = []
    monkeypatch.setattr(precision, "probe_bf16_speedup", lambda: calls.append(1) or 2.5)
    assert precision.cpu_precision()[0] == "bf16"
    assert precision.cpu_precision()[0] == "bf16" and len(calls) == 1  # the second answer comes from the cache
    monkeypatch.setattr(precision, "probe_bf16_speedup", lambda: 0.1)
    (tmp_path / "precision.json").unlink()
    assert precision.cpu_precision()[0] == "fp32"  # slower bf16 is not chosen


def test_a_damaged_cache_entry_is_measured_again_not_trusted(monkeypatch, tmp_path):
    monkeypatch.setenv("MOLSSL_CACHE", str(tmp_path))
    _fake_cpu(monkeypatch, ["amx_bf16"])
    monkeypatch.setattr(precision, "probe_bf16_speedup", lambda: 0.5)
    precision.cpu_precision()
    path = tmp_path / "precision.json"
    table = json.loads(path.read_text())
    for damaged in ("fast", None, True, -3, 1e308):
        table = {key: {**entry, "speedup": damaged} for key, entry in table.items()}
        path.write_text(json.dumps(table))
        assert precision.cpu_precision()[0] == "fp32"  # the probe's 0.5, not the damaged value
    path.write_text("{not json")
    assert precision.cpu_precision()[0] == "fp32"
