"""The first call of compare_models against the second, each in a fresh process: what a
user waits for once per process beyond the work itself.

Where the models come in loaded (``ftlens.load_model``, where a user expects the wait),
the two calls should be within 1.5 s. Named models are loaded inside the call, so its
first call also pays for transformers importing its model-loading code (about 2 s,
``transformers.modeling_utils``: torch.distributed.tensor, quantizers, hub kernels), once
per process; that is reported, not asserted."""

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import report

SCRIPT = textwrap.dedent("""
    import json, sys, time
    started = time.perf_counter()
    import ftlens
    imported = time.perf_counter()
    from ftlens.data import generate_sentences
    sentences = [" ".join(s.words) for s in generate_sentences(50, seed=1)]
    if sys.argv[1] == "loaded":
        models = (ftlens.load_model("minilm", device="cpu"), ftlens.load_model("minilm", device="cpu"))
    else:
        models = ("minilm", "minilm")
    loaded = time.perf_counter()
    calls = []
    for _ in range(3):
        start = time.perf_counter()
        ftlens.compare_models(*models, sentences, progress=False)
        calls.append(time.perf_counter() - start)
    print(json.dumps({"import_s": imported - started, "load_s": loaded - imported, "calls_s": calls}))
""")


@pytest.mark.parametrize("models", ["loaded", "named"])
def test_first_call_vs_second(benchmark, models):
    def run():
        done = subprocess.run([sys.executable, "-c", SCRIPT, models], capture_output=True, text=True,
                              check=True, timeout=600)
        return json.loads(done.stdout.strip().splitlines()[-1])

    measured = [run() for _ in range(2)]
    benchmark.pedantic(run, rounds=1, iterations=1)
    gaps = [m["calls_s"][0] - m["calls_s"][1] for m in measured]
    benchmark.extra_info.update(measured=measured, gaps=gaps)
    report(f"compare_models first vs second call, 50 sentences, models {models}",
           import_s=[f"{m['import_s']:.2f}" for m in measured],
           load_s=[f"{m['load_s']:.2f}" for m in measured],
           first_s=[f"{m['calls_s'][0]:.2f}" for m in measured],
           second_s=[f"{m['calls_s'][1]:.2f}" for m in measured], gap_s=[f"{g:.2f}" for g in gaps])
    if models == "loaded":
        assert min(gaps) <= 1.5
