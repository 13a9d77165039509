"""The probing finding on MiniLM: every layer, EWT train -> dev, every task.

    FTLENS_DATA_DIR=../shared/data .venv/bin/python bench/probe_ewt.py [OUT.json]

Writes the two stores (once), probes UPOS, XPOS, the edge relation label, arc detection
(all logistic, with control tasks and MDL) and the structural probes, prints the tables
and saves the ProbeResult as JSON (default: probe_ewt.json).
"""

import sys
import time

import ftlens
from ewt_stores import ewt_store

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "probe_ewt.json"
    train, dev = ewt_store("train"), ewt_store("dev")
    start = time.perf_counter()
    result = ftlens.probe(train, dev, tasks=("upos", "xpos", "edge:deprel", "arc", "distance", "depth"),
                          l2=1e-5, mdl=True, max_passes=25, epochs=4, rank=64)
    seconds = time.perf_counter() - start
    result.save(out)
    print(f"{train.n_rows} train words, {dev.n_rows} dev words, {seconds / 60:.1f} min")
    print(result.table())
    print("\nselectivity (points)")
    print(result.table("selectivity"))
    print("\nMDL compression")
    print(result.table("mdl_compression"))
    print("\nDSpr / NSpr")
    print(result.table("dspr"))
    print(result.table("nspr"))
