"""sync() across torch.distributed ranks (two gloo processes on the CPU)."""

import ftlens
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers.data import offset_data


def stacks():
    x, y = offset_data(n=900, p=12, q=8, seed=7)
    return np.stack([x, x[:, ::-1] * 2 + 1]), np.stack([y, y ** 2])


def _rank(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    xs, ys = stacks()
    mine = np.array_split(np.arange(xs.shape[1]), world)[rank]
    lm = ftlens.LayerMoments(2, 12, 8, pairs="all", chunk_rows=100).update(xs[:, mine], ys[:, mine])
    lm.sync()
    torch.save(lm.state_dict(), f"{out}.{rank}")
    dist.destroy_process_group()


def test_sync_equals_one_process_over_all_rows(tmp_path):
    out = str(tmp_path / "state")
    mp.spawn(_rank, args=(2, str(tmp_path / "init"), out), nprocs=2, join=True)
    xs, ys = stacks()
    whole = ftlens.LayerMoments(2, 12, 8, pairs="all").update(xs, ys)
    for rank in range(2):
        synced = ftlens.LayerMoments(2, 12, 8, pairs="all")
        synced.load_state_dict(torch.load(f"{out}.{rank}"))
        assert synced.n == 900
        np.testing.assert_allclose(synced.cka(), whole.cka(), rtol=1e-10)
        np.testing.assert_allclose(synced.rsa(), whole.rsa(), rtol=1e-10)
        np.testing.assert_allclose(synced.rsa("sqeuclidean"), whole.rsa("sqeuclidean"), rtol=1e-10)
        np.testing.assert_allclose(synced.cca("pwcca"), whole.cca("pwcca"), rtol=1e-10)


def test_merge_from_a_state_dict_and_sync_without_a_group():
    xs, ys = stacks()
    a = ftlens.LayerMoments(2, 12, 8).update(xs[:, :400], ys[:, :400])
    b = ftlens.LayerMoments(2, 12, 8).update(xs[:, 400:], ys[:, 400:])
    a.merge(b.state_dict())
    np.testing.assert_allclose(a.cka(), ftlens.LayerMoments(2, 12, 8).update(xs, ys).cka(), rtol=1e-10)
    with pytest.raises(RuntimeError, match="needs an initialized torch.distributed process group"):
        a.sync()
