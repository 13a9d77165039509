"""The measure registry: one entry makes a measure available everywhere."""

import ftlens
import numpy as np
import pytest
from ftlens.similarity import registry
from helpers.data import offset_data


def test_every_measure_is_reachable_by_name():
    x, y = offset_data()
    lm = ftlens.LayerMoments(1, 9, 7).update(x[None], y[None])
    assert lm.measure("cka")[0] == pytest.approx(ftlens.cka(x, y), rel=1e-12)
    assert lm.measure("rsa", rdm="cosine")[0] == pytest.approx(ftlens.rsa(x, y, "cosine"), rel=1e-12)
    assert lm.measure("svcca", k=3)[0] == pytest.approx(ftlens.cca(x, y, "svcca", k=3), rel=1e-12)
    assert registry.get("procrustes").kind == "distance"
    with pytest.raises(ValueError, match="unknown measure 'bleu': choose from"):
        registry.get("bleu")
    with pytest.raises(ValueError, match="undefined must be one of"):
        registry.strict("ignore")


def test_a_new_entry_reaches_layer_moments_and_compare_models(monkeypatch, minilm):
    halved = registry.Measure("half_cka", "half of linear CKA",
                              lambda core, strict, **_: core.cka(False, strict) / 2)
    monkeypatch.setitem(registry.MEASURES, "half_cka", halved)
    x, y = offset_data()
    lm = ftlens.LayerMoments(1, 9, 7).update(x[None], y[None])
    assert lm.measure("half_cka")[0] == pytest.approx(lm.cka()[0] / 2, rel=1e-14)
    result = ftlens.compare_models(minilm, minilm, ["A small test.", "Another short one."],
                                   measures=("cka", "half_cka"), progress=False)
    np.testing.assert_allclose(result.half_cka, result.cka / 2, rtol=1e-12)
    assert result.to_dict()["half_cka"] == pytest.approx((result.cka / 2).tolist())


def test_measure_by_name_passes_every_option_to_the_moments(tmp_path):
    """The one router hands the moments every option (SVCCA's k and threshold lost them once,
    silently computing SVCCA at the default threshold), also through compare_stores and the
    permutation test."""
    x, y = offset_data()
    by_k = ftlens.cca(x, y, "svcca", k=2)
    assert by_k != pytest.approx(ftlens.cca(x, y, "svcca"), rel=1e-6)  # the option matters here
    assert ftlens.similarity.measure(x, y, "svcca", k=2)["value"] == pytest.approx(by_k, rel=1e-12)
    by_threshold = ftlens.cca(x, y, "svcca", threshold=0.5)
    assert ftlens.similarity.measure(x, y, "svcca", threshold=0.5)["value"] == pytest.approx(by_threshold,
                                                                                            rel=1e-12)
    test = ftlens.permutation_test(x, y, "svcca", permutations=2, k=2)
    assert test["value"] == pytest.approx(by_k, rel=1e-12)
    a = ftlens.store.from_arrays([x, x], path=tmp_path / "a", model="x")
    b = ftlens.store.from_arrays([y, y], path=tmp_path / "b", model="y")
    result = ftlens.compare_stores(a, b, {"svcca_k2": {"measure": "svcca", "k": 2}}, progress=False)
    np.testing.assert_allclose(result.values["svcca_k2"], [by_k, by_k], rtol=1e-6)
