"""One probe training scored on several eval stores: each result is the one-store call's
(control tasks included), and the probes are trained once."""

import warnings

import ftlens
import ftlens.probes.api as api
import numpy as np
import pytest
from helpers.probe_data import synthetic_sentences, synthetic_store

TASKS = ("upos", "edge:deprel", "arc", "distance")


@pytest.fixture(scope="module")
def stores():
    states, labels, index = synthetic_sentences(50, seed=2)
    labels["word"] = np.char.add(labels["word"], np.where(np.arange(len(index)) % 2, "", "-far"))  # new types
    far = ftlens.store.from_arrays(states, labels, rows="words", index=index, model="synthetic")
    return synthetic_store(160, seed=0), synthetic_store(60, seed=1), far


def _probe(train, evals, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ftlens.probe(train, evals, tasks=TASKS, epochs=2, rank=3, progress=False, **options)


def test_each_eval_store_gets_what_its_own_call_gives(stores):
    train, *evals = stores
    together = _probe(train, {"near": evals[0], "far": evals[1]})
    assert list(together) == ["near", "far"]
    for name, store in zip(["near", "far"], evals, strict=True):
        alone = _probe(train, store)
        got = together[name]
        assert got.tasks == alone.tasks and got.eval_data == alone.eval_data
        np.testing.assert_array_equal(got.strength, alone.strength)
        for metric in ("accuracy", "macro_f1", "control_accuracy", "selectivity"):
            np.testing.assert_array_equal(got.scores[metric], alone.scores[metric])
        np.testing.assert_allclose(got.scores["uuas"], alone.scores["uuas"], rtol=1e-6)  # trained again
        for key, counts in alone.by_input.items():
            np.testing.assert_array_equal(got.by_input[key], counts)
        assert got.n_eval == alone.n_eval and got.n_train == alone.n_train


def test_probes_train_once_for_any_number_of_eval_stores(stores, monkeypatch):
    train, *evals = stores
    calls = []
    real = api.fit_logistic
    monkeypatch.setattr(api, "fit_logistic", lambda *a, **k: calls.append(1) or real(*a, **k))
    one = _probe(train, evals[0])
    per_call = len(calls)
    both = _probe(train, [evals[0], evals[1]])
    assert len(calls) == 2 * per_call  # the second call trained as often as the first
    assert isinstance(both, list) and len(both) == 2
    np.testing.assert_array_equal(both[0].accuracy, one.accuracy)
    np.testing.assert_array_equal(both[0].selectivity, one.selectivity)


def test_an_empty_or_mismatched_list_of_eval_stores_is_refused(stores):
    train, evaluation, _ = stores
    with pytest.raises(ValueError, match="eval is an empty list"):
        ftlens.probe(train, [], progress=False)
    with pytest.raises(ValueError, match="eval is an empty mapping"):
        ftlens.probe(train, {}, progress=False)
    other = synthetic_store(40, seed=3, dim=6)
    with pytest.raises(ValueError, match="different widths"):
        ftlens.probe(train, [evaluation, other], progress=False)


def test_a_word_types_control_draw_depends_on_the_word_alone():
    from ftlens.probes.tasks import word_uniforms

    words = [f"w{i}" for i in range(10_000)]
    u = word_uniforms(words, "upos", seed=0)
    np.testing.assert_array_equal(word_uniforms(["w7", "w3"], "upos", 0), u[[7, 3]])
    assert not np.array_equal(word_uniforms(words, "upos", 1), u)
    assert not np.array_equal(word_uniforms(words, "xpos", 0), u)
    assert np.all((u >= 0) & (u < 1))
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - 1000) < 150), counts  # uniform: each tenth about 1,000 of them
