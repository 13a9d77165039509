"""The logistic probe on MiniLM activations of UD English EWT against scikit-learn's
LogisticRegression (lbfgs, same L2) trained and evaluated on the same rows."""

import ftlens
import numpy as np
import pytest
from ftlens.data import read_conllu
from ftlens.probes import tasks as task_module
from ftlens.probes.api import _edge_group, _row_group

L2 = 1e-2  # on the mean loss: scikit-learn's C = 1 / (L2 n)


@pytest.fixture(scope="module")
def ewt_stores(data_dir, tmp_path_factory):
    sentences = read_conllu(data_dir / "ud_en_ewt" / "en_ewt-ud-dev.conllu")
    folder = tmp_path_factory.mktemp("ewt")
    train = ftlens.store.write("minilm", sentences[:250], folder / "train", rows="words", progress=False)
    evaluation = ftlens.store.write("minilm", sentences[250:400], folder / "eval", rows="words",
                                    progress=False)
    return train, evaluation


def _sklearn_accuracy(train_rows, train_labels, eval_rows, eval_labels, layer):
    from sklearn.linear_model import LogisticRegression

    def features(rows):
        x = rows.store.layer(layer)[rows.first].astype(np.float64)
        return x if rows.second is None else np.concatenate([x, rows.store.layer(layer)[rows.second]], 1)

    x = features(train_rows)
    model = LogisticRegression(C=1 / (L2 * len(x)), max_iter=1000).fit(x, train_labels)
    keep = eval_labels != -1
    predicted = model.predict(features(eval_rows)[keep])
    return np.mean(predicted == eval_labels[keep])  # an unseen label (-2) is never predicted: wrong


def test_logistic_probe_agrees_with_scikit_learn_on_every_layer(ewt_stores):
    train, evaluation = ewt_stores
    result = ftlens.probe(train, evaluation, tasks=("upos", "edge:deprel"), control=False, l2=L2,
                          max_passes=100, progress=False)
    layers = list(range(train.n_layers))
    upos = _row_group([task_module.ProbeTask("upos", "row", "upos")], train, [evaluation], layers, 0)
    edge_task = task_module.ProbeTask("edge:deprel", "edge", "deprel")
    edges = _edge_group([edge_task], train, [evaluation], layers, "concat", 0)
    for layer in layers:
        for j, group in enumerate((upos, edges)):
            labels = group.train_labels[:, 0], group.eval_labels[0][:, 0]
            want = _sklearn_accuracy(group.train, labels[0], group.evals[0], labels[1], layer)
            assert abs(result.accuracy[layer, j] - want) <= 0.005, (layer, result.tasks[j], want)
