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
