"""torch.distributed helpers shared by compare_models and the study runner: which rank
this is, starting the process group torchrun describes, and small collectives."""

from __future__ import annotations

import os

import torch


def active() -> bool:
    """True inside an initialized torch.distributed process group of more than one rank."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_and_world()[0] == 0


def init_from_env() -> bool:
    """Starts the process group that ``torchrun`` describes in the environment (NCCL on
    GPUs, gloo on CPUs) when there is one and it is not started yet; True if it started it."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def barrier() -> None:
    if active():
        import torch.distributed as dist

        dist.barrier()


def total(*counts: int) -> list[int]:
    """Each count summed over the ranks."""
    if not active():
        return list(counts)
    import torch.distributed as dist

    values = torch.tensor(counts, dtype=torch.int64)
    dist.all_reduce(values)
    return values.tolist()


def broadcast(value):
    """Rank 0's value (any picklable object) on every rank."""
    if not active():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
