"""The task heads on tiny data: each learns in a few steps and reloads to the same
predictions; tree decoding, attachment scores, SQuAD scoring, QA windows and IsoBN
against brute-force references."""

import dataclasses
import itertools

import ftlens
import numpy as np
import pytest
import torch
from ftlens.data import read_squad
from ftlens.data.conllu import check_tree
from ftlens.data.generated import generate_pairs, generate_sentences
from ftlens.data.pairs import SentencePair
from ftlens.finetuning import IsoBN, evaluate, load_task_model
from ftlens.finetuning.norms import cls_norm
from ftlens.finetuning.parse import attachment_scores, decode_batch, mst, scored_words
from ftlens.finetuning.qa import QA, best_answers, squad_scores

FEW = dict(max_steps=12, batch_size=8, eval_steps=6, save_steps=12, progress=False)


def negation(n: int, seed: int) -> list[SentencePair]:
    """Single sentences labeled by whether they negate their verb."""
    return [SentencePair(p.hypothesis, None, "negated" if p.label == "contradiction" else "plain")
            for p in generate_pairs(n, seed=seed)]


def squad_slices(data_dir):
    examples = read_squad(data_dir / "squad_v1.1" / "dev-v1.1.json")
    return examples[:96], examples[96:128]


CASES = {
    "sentence": (lambda _: (negation(160, 0), negation(48, 1)),
                 dict(max_length=40, learning_rate=1e-4, isobn=True)),
    "pair": (lambda _: (generate_pairs(160, seed=0), generate_pairs(48, seed=1)),
             dict(max_length=40, learning_rate=1e-4, cls_norm="layer")),
    "parsing": (lambda _: (generate_sentences(160, seed=0), generate_sentences(40, seed=1)),
                dict(max_length=64, learning_rate=1e-4, head_learning_rate=2e-3)),
    "qa": (squad_slices, dict(max_length=128, doc_stride=32, learning_rate=1e-4)),
}


@pytest.mark.parametrize("task", sorted(CASES))
def test_head_learns_and_reloads_to_the_same_predictions(task, data_dir, tmp_path):
    make, options = CASES[task]
    train, evaluation = make(data_dir)
    result = ftlens.finetune("minilm", task, train, evaluation, tmp_path, **FEW, **options)
    first, last = result.history[0], result.history[-1]
    assert last["eval_loss"] < first["eval_loss"]
    metric = "eval_" + ftlens.finetuning.TASKS[task].metric
    assert last[metric] >= first[metric]
    model = load_task_model(result.model_dir)
    tokenizer = ftlens.load_model(result.model_dir, device="cpu")[1]
    again = evaluate(model, task, evaluation, tokenizer, **options,
                     batch_size=FEW["batch_size"])
    assert again[metric] == result.metrics[metric]
    assert again["eval_loss"] == pytest.approx(result.metrics["eval_loss"], rel=1e-6)
    _check_example_scores(result.scores(), result.metrics, evaluation)
    if task == "parsing":
        _check_relations_the_parser_lacks(model, tokenizer, evaluation, result, options)


def _check_relations_the_parser_lacks(model, tokenizer, evaluation, result, options) -> None:
    """An eval relation the parser never saw is scored, with a warning, as a wrong label:
    LAS loses exactly the words it had right, UAS is unchanged."""
    renamed_rel = evaluation[0].deprels[0]
    renamed = [dataclasses.replace(s, deprels=["novel" if r == renamed_rel else r for r in s.deprels])
               for s in evaluation]
    with pytest.warns(UserWarning, match=r"eval relations \['novel'\] \(\d+ words\) are not among"):
        metrics = evaluate(model, "parsing", renamed, tokenizer, **options, batch_size=FEW["batch_size"])
    right = scored = 0
    for sentence, predicted in zip(evaluation, result.scores().predictions, strict=True):
        mask = np.array(scored_words(sentence, "upos"), dtype=bool)
        head_right = np.array(predicted["heads"]) == np.array(sentence.heads)
        label_right = np.array(predicted["deprels"]) == np.array(sentence.deprels)
        kept = np.array(sentence.deprels) != renamed_rel
        right += int((mask & head_right & label_right & kept).sum())
        scored += int(mask.sum())
    assert metrics["eval_uas"] == result.metrics["eval_uas"]
    assert metrics["eval_las"] == pytest.approx(100 * right / scored, abs=1e-9)
    assert metrics["eval_las"] < result.metrics["eval_las"]


def _check_example_scores(scores, metrics: dict, evaluation) -> None:
    """Every metric is the scaled ratio of its per-example sums; one entry per eval example."""
    assert set(scores.num) == set(scores.den) and scores.num
    for name in scores.num:
        assert len(scores.num[name]) == len(scores.den[name]) == len(evaluation) == len(scores.predictions)
        assert (0 <= scores.num[name]).all() and (scores.num[name] <= scores.den[name]).all()
        ratio = scores.scale * scores.num[name].sum() / scores.den[name].sum()
        assert ratio == pytest.approx(metrics["eval_" + name], abs=1e-9)


def brute_force_tree(scores: np.ndarray) -> tuple[float, np.ndarray]:
    n = len(scores)
    best = (-np.inf, None)
    for heads in itertools.product(range(n + 1), repeat=n):
        if check_tree(list(heads)) is None:
            total = scores[np.arange(n), heads].sum()
            if total > best[0]:
                best = (total, np.array(heads))
    return best


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_mst_finds_the_best_one_root_tree(n):
    rng = np.random.default_rng(n)
    for _ in range(30):
        scores = rng.normal(size=(n, n + 1)) * 3
        scores[:, 0] += rng.normal() * 4  # sometimes every word prefers the root
        heads = mst(scores)
        assert check_tree(list(heads)) is None
        total, _ = brute_force_tree(scores)
        assert scores[np.arange(n), heads].sum() == pytest.approx(total, abs=1e-9)


def test_greedy_and_mst_decoding_on_a_padded_batch():
    torch.manual_seed(0)
    n_words = torch.tensor([5, 3])
    arc = torch.randn(2, 5, 6) * 3
    for b, n in enumerate(n_words.tolist()):  # masked as the parser masks: self-loops, padding
        arc[b, torch.arange(5), torch.arange(5) + 1] = torch.finfo(arc.dtype).min
        arc[b, :, n + 1 :] = torch.finfo(arc.dtype).min
    greedy = decode_batch(arc, n_words, "greedy")
    assert torch.equal(greedy, arc.argmax(-1))
    trees = decode_batch(arc, n_words, "mst")
    for b, n in enumerate(n_words.tolist()):
        heads = trees[b, :n].numpy()
        assert check_tree(heads.tolist()) is None
        scores = torch.log_softmax(arc[b, :n, : n + 1].double(), -1).numpy()
        best, _ = brute_force_tree(np.where(scores < -1e30, -np.inf, scores))
        assert scores[np.arange(n), heads].sum() == pytest.approx(best, abs=1e-5)


def test_attachment_scores_leave_out_punctuation_and_padding():
    heads = np.array([[2, 0, 2, -100]])
    deprels = np.array([[1, 0, 3, -100]])
    scored = np.array([[1, 1, 0, -100]])  # the third word is punctuation
    pred_heads, pred_deprels = np.array([[2, 0, 1, 3]]), np.array([[2, 0, 3, 3]])
    assert attachment_scores(pred_heads, pred_deprels, heads, deprels, scored) == {"uas": 100.0, "las": 50.0}


def test_squad_scores_follow_the_official_normalization():
    from ftlens.data.squad import Answer, QAExample

    examples = [QAExample("a", "q", "c", answers=[Answer("Denver Broncos", 0), Answer("the Broncos", 0)]),
                QAExample("b", "q", "c", answers=[Answer("Santa Clara, California", 0)])]
    scores = squad_scores({"a": "The Denver Broncos!", "b": "Santa Clara"}, examples)
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx((100.0 + 100.0 * 2 * (1.0 * 2 / 3) / (1.0 + 2 / 3)) / 2)


def test_best_answer_spans_windows_and_respects_the_length_limit():
    from ftlens.data.squad import QAExample

    context = "aa bb cc dd"
    aa, bb, cc, dd = (0, 2), (3, 5), (6, 8), (9, 11)
    windows = [("x", [None, aa, bb, None, None]), ("x", [None, None, bb, cc, dd])]  # None: not context
    starts = np.array([[9.0, 0, 1, 0, 0], [0, 0, 0, 5, 0]])  # the [CLS] logits (9) are never chosen
    ends = np.array([[9.0, 0, 2, 0, 0], [0, 0, 0, 0, 4]])
    examples = [QAExample("x", "q", context)]
    assert best_answers(starts, ends, windows, examples, max_answer_length=30) == {"x": "cc dd"}  # 5 + 4
    assert best_answers(starts, ends, windows, examples, max_answer_length=1) == {"x": "cc"}  # 5 + 0
    starts[0, 1] = 20
    assert best_answers(starts, ends, windows, examples, max_answer_length=30) == {"x": "aa bb"}  # 20 + 2


def test_qa_windows_label_the_answer_tokens(data_dir):
    import transformers

    examples = read_squad(data_dir / "squad_v1.1" / "dev-v1.1.json")[:40]
    tokenizer = transformers.AutoTokenizer.from_pretrained(ftlens.activations.models.packaged_minilm_path())
    opts = ftlens.finetuning.FinetuneOptions(max_length=64, doc_stride=16)
    features = QA.dataset(examples, tokenizer, opts, {}, train=True)
    assert len(features) > len(examples)  # long contexts give several windows
    found = 0
    for item, (example_id, offsets) in zip(features.items, features.windows, strict=True):
        start, end = item["start_positions"], item["end_positions"]
        if start == 0:
            continue
        example = next(e for e in examples if e.id == example_id)
        found += 1
        first = example.answers[0].start
        last = first + len(example.answers[0].text)
        # the fewest whole tokens that cover the answer ("gold" inside "golden" takes "golden")
        assert offsets[start][0] <= first < offsets[start][1] and offsets[end][0] < last <= offsets[end][1]
    assert found >= len(examples) - 2


def reference_isobn(batches, x, momentum=0.05, beta=0.5, eps=1e-3):
    d = x.shape[1]
    cov, std = np.zeros((d, d)), np.zeros(d)
    for b in batches:
        c = b - b.mean(0)
        cov += momentum * (c.T @ c / len(b) - cov)
        std += momentum * (np.sqrt((c ** 2).mean(0)) - std)
    corr = np.clip(cov / np.outer(std, std), -1, 1)
    gamma = (corr ** 2).mean(1)
    scale = (gamma * std + eps) ** -beta
    var = np.diag(cov)
    return x * scale * np.sqrt(var.sum() / ((var * scale ** 2).sum() + eps))


def test_isobn_matches_a_float64_reference():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 6))
    batches = [rng.normal(size=(32, 6)) @ mixing + 20.0 for _ in range(5)]  # correlated, offset like BERT
    layer = IsoBN(6).double()
    layer.train()
    for b in batches:
        layer(torch.from_numpy(b))
    layer.eval()
    x = rng.normal(size=(4, 6)) @ mixing
    np.testing.assert_allclose(layer(torch.from_numpy(x)).numpy(), reference_isobn(batches, x), rtol=1e-10)
    assert "cov" in layer.state_dict() and "std" in layer.state_dict()  # saved with the model


def test_cls_norm_options():
    x = torch.randn(16, 8) * 5 + 3
    assert torch.allclose(cls_norm("l2", 8)(x).norm(dim=1), torch.full((16,), 8 ** 0.5))
    assert torch.allclose(cls_norm("layer", 8)(x).mean(1), torch.zeros(16), atol=1e-5)
    assert torch.allclose(cls_norm("batch", 8).train()(x).mean(0), torch.zeros(8), atol=1e-5)
    assert torch.equal(cls_norm(None, 8)(x), x)
    with pytest.raises(ValueError, match=r"cls_norm must be None or one of \('layer', 'batch', 'l2'\)"):
        cls_norm("rms", 8)


def test_punctuation_rules_of_the_attachment_scores(data_dir):
    """UPOS PUNCT (the default), eval.pl's all-punctuation forms, or every word: on UD EWT
    dev the first two differ on 44 PUNCT words that are not punctuation characters ("~")
    and 74 other words that are ("%")."""
    from ftlens.data import Sentence, read_conllu
    from ftlens.finetuning.parse import scored_words

    minimal = Sentence(words=["~", "50", "%", "...", "ok"], upos=["PUNCT", "NUM", "SYM", "PUNCT", "INTJ"],
                       xpos=[""] * 5, heads=[2, 0, 2, 2, 2],
                       deprels=["punct", "root", "dep", "punct", "discourse"])
    assert scored_words(minimal, "upos") == [0, 1, 1, 0, 1]
    assert scored_words(minimal, "form") == [1, 1, 0, 0, 1]
    assert scored_words(minimal, "none") == [1] * 5
    dev = read_conllu(data_dir / "ud_en_ewt" / "en_ewt-ud-dev.conllu")
    differ = [(a, b) for s in dev
              for a, b in zip(scored_words(s, "upos"), scored_words(s, "form"), strict=True) if a != b]
    assert differ.count((0, 1)) == 44 and differ.count((1, 0)) == 74
