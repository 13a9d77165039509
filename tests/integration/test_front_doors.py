"""Bad input at the public entry points gets a clear error, early; odd but valid input
gets the right number."""

import time

import ftlens
import numpy as np
import pytest
import torch
from ftlens.activations.models import PROXY_VARIABLES
from ftlens.activations.stream import ActivationStream
from ftlens.cli import main
from helpers.data import offset_data


def test_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    for name in ("HF_HUB_OFFLINE", *PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(OSError, match=r"hub cannot be reached .* pass the folder path"):
        ftlens.load_model("some-org/some-model", device="cpu")
    assert time.monotonic() - start < 10


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(OSError, match=r"holds no model \(no config.json\)"):
        ftlens.load_model(tmp_path)


@pytest.mark.parametrize("option", ["batch_size", "max_batch_tokens", "block_size", "max_length"])
def test_stream_sizes_must_be_positive_integers(minilm, option):
    with pytest.raises(ValueError, match=f"{option}.* must be a positive integer, got 0"):
        ActivationStream([minilm], **{option: 0})


def test_store_chunks_need_a_positive_size(tmp_path, minilm):
    store = ftlens.store.write(minilm, ["A short sentence.", "Another one here."], tmp_path / "s",
                               progress=False)
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer, got -5"):
        next(store.chunks(-5))


def test_meta_tensors_and_extended_precision_are_named():
    with pytest.raises(ValueError, match="X is a meta tensor"):
        ftlens.cka(torch.empty(10, 3, device="meta"), torch.randn(10, 3))
    if np.dtype(np.longdouble).itemsize > 8:
        with pytest.raises(TypeError, match=r"Y holds float128 .*astype\(np.float64\)"):
            ftlens.cka(np.ones((10, 3)), np.ones((10, 3), dtype=np.longdouble))


def test_big_endian_arrays_give_the_native_result():
    x, y = offset_data()
    assert ftlens.rsa(x.astype(">f8"), y.astype(">f4")) == pytest.approx(
        ftlens.rsa(x, y.astype(np.float32)), rel=1e-12)


@pytest.mark.parametrize("scale", [1e19, 1e20, 1e-23, 1e-30])
def test_float32_at_extreme_scales_matches_float64(scale):
    x, y = offset_data(n=400, offset=10.0)
    x32, y32 = (x * scale).astype(np.float32), y.astype(np.float32)
    x64, y64 = x32.astype(np.float64), y32.astype(np.float64)
    for measure in (ftlens.cka, ftlens.rsa, ftlens.cca, ftlens.procrustes):
        got, want = measure(x32, y32), measure(x64, y64)
        assert np.isfinite(got) and got == pytest.approx(want, rel=1e-6, abs=1e-9), measure.__name__


def test_demo_checks_its_output_folder_first(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(blocker / "out"), "--no-progress"])
    assert "--out: cannot write results into" in capsys.readouterr().err


def test_capture_options_are_one_object_for_every_entry_point(minilm, tmp_path):
    words = ftlens.CaptureOptions(rows="words", batch_size=4)
    stream = ActivationStream([minilm], words, word_pool="last")
    assert stream.rows == "words" and stream.word_pool == "last" and stream.batch_size == 4
    sentences = ["A short sentence here.", "Another one."]
    result = ftlens.compare_models(minilm, minilm, sentences, capture=words, progress=False)
    store = ftlens.store.write(minilm, sentences, tmp_path / "s", capture=words, progress=False)
    assert result.n_rows == store.n_rows == 6 and store.manifest["rows"] == "words"
    unknown = r"unknown option 'row' \(did you mean 'rows'\?\): the options are CompareOptions: "
    with pytest.raises(TypeError, match=unknown):
        ftlens.compare_models(minilm, minilm, sentences, row="words")
    with pytest.raises(ValueError, match="segment must be None, 0 or 1, got 3"):
        ftlens.CaptureOptions(segment=3)


def test_hub_probe_leaves_proxied_machines_to_the_hub_client(monkeypatch):
    from ftlens.activations.models import hub_reachable

    for name in ("HF_HUB_OFFLINE", *PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert not hub_reachable()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert hub_reachable()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not hub_reachable()
