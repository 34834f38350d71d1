"""Training under torchrun: DistributedDataParallel on gloo (CPU) or nccl (CUDA) (issue #21).

``torchrun --nproc-per-node N -m emovox train|cv ...`` starts N processes; ``emovox`` joins
their process group (:func:`start_distributed`), and :mod:`emovox.train` trains one
DistributedDataParallel copy per process: every process draws the shuffle, versions and mixes
one process would draw, encodes and runs only its share of each batch (:func:`batch_share`),
and computes the loss of the whole batch from the gathered outputs (:func:`gather_output`),
so a step is one process's step. Rank 0 alone logs, checkpoints and writes results, and
extracts features into the cache first (:func:`main_first`). Without torchrun every helper
here is a no-op for rank 0 of 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, EmovoxError


@dataclass(frozen=True)
class World:
    """This process's place among torchrun's processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process logs and writes (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether the training is shared by more than one process."""
        return self.size > 1


def world() -> World:
    """This process's rank, world size and local rank, from torchrun's environment.

    A process group must have been started (:func:`start_distributed`) for a world above one;
    without torchrun's variables it is rank 0 of 1.
    """
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets "
                          "them)") from None
    if size <= 1:
        return World()
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return World()
    return World(rank, size, local)


def start_distributed(device: str) -> World:
    """Join torchrun's process group when WORLD_SIZE > 1: gloo on CPU, nccl for CUDA.

    Each process uses ``cuda:LOCAL_RANK`` when the device is CUDA. Returns the world (rank 0
    of 1 without torchrun).
    """
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return World()
    import torch
    import torch.distributed as dist

    cuda = str(device).startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible to this process")
    if not dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if cuda else "gloo")
    return world()


def stop_distributed() -> None:
    """Leave the process group (after the last collective step)."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def device_for(device: str) -> str:
    """The device of this process: ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun."""
    here = world()
    if here.distributed and device == "cuda":
        return f"cuda:{here.local_rank}"
    return device


def barrier() -> None:
    """Wait for every process (nothing to wait for in one process)."""
    if world().distributed:
        import torch.distributed as dist

        dist.barrier()


def main_first(work: Callable[[], Any]) -> Any:
    """Run ``work`` on rank 0 first, then on the others (that find what it cached)."""
    here = world()
    if not here.distributed:
        return work()
    if here.main:
        result = work()
        barrier()
        return result
    barrier()
    return work()


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every process."""
    if not world().distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> list[Any]:
    """Every process's ``value``, by rank (``[value]`` in one process)."""
    here = world()
    if not here.distributed:
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * here.size
    dist.all_gather_object(out, value)
    return out


def check_in_step(values: Sequence[Any]) -> None:
    """Fail in one line when torchrun's processes ended with different weights.

    DDP keeps them equal (same start, averaged gradients); a difference means the processes
    did not train together, and rank 0's model would not be what was trained.
    """
    here = world()
    if not here.distributed:
        return
    total = float(sum(float(v.detach().double().sum()) for v in values))
    sums = gather(total)
    if max(sums) - min(sums) > 1e-6 * max(1.0, abs(total)):
        raise EmovoxError(f"the {here.size} training processes ended with different weights "
                          f"(sums {', '.join(f'{s:.6g}' for s in sums)}): not trained "
                          "together")


def _gather_function() -> Any:
    """An all-gather whose backward sends each process the gradient of its own rows.

    Backward all-reduces the gradients of the gathered rows (every process computed the same
    loss of the whole batch, so each row's gradient arrives ``world size`` times) and keeps
    this process's; DDP's averaging over the processes then gives exactly the gradient of the
    whole batch's loss. Works on gloo (no reduce-scatter needed).
    """
    import torch
    import torch.distributed as dist

    class Gather(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:  # noqa: D102
            out = [torch.zeros_like(x) for _ in range(dist.get_world_size())]
            dist.all_gather(out, x.contiguous())
            return torch.stack(out)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:  # noqa: D102
            grad = grad.contiguous()
            dist.all_reduce(grad)
            return grad[dist.get_rank()]

    return Gather


def gather_rows(x: Any, counts: Sequence[int]) -> Any:
    """Every process's rows of ``x`` (``counts[r]`` of them on rank ``r``), in rank order.

    Differentiable (:func:`_gather_function`): a loss of the whole batch computed on every
    process trains each process's network copy on its own rows' share of it.
    """
    import torch

    most = max(counts)
    pad = most - x.shape[0]
    if pad:
        x = torch.cat([x, x.new_zeros((pad, *x.shape[1:]))])
    stacked = _gather_function().apply(x)
    return torch.cat([stacked[r, : counts[r]] for r in range(len(counts))])


def gather_output(output: Any, counts: Sequence[int]) -> Any:
    """A model's output for the whole batch: each per-recording tensor gathered by rows.

    Frame weights (one row per frame count, unused by the losses) are left out.
    """
    import dataclasses

    changes = {f.name: (None if f.name == "frame_weights" or getattr(output, f.name) is None
                        else gather_rows(getattr(output, f.name), counts))
               for f in dataclasses.fields(output)}
    return dataclasses.replace(output, **changes)


def average_gradients(parameters: Sequence[Any]) -> None:
    """All-reduce (mean) the gradients of parameters DDP does not own (the loss's)."""
    here = world()
    if not here.distributed:
        return
    import torch.distributed as dist

    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= here.size


def batch_share(length: int, rank: int, size: int) -> list[int] | None:
    """The positions of a batch of ``length`` that process ``rank`` of ``size`` encodes.

    Every process draws the shuffle (and each recording's version) one process would draw,
    and takes every ``size``-th recording of each batch from its rank on (DistributedSampler's
    interleaved split, per batch rather than per epoch): a step over all processes sees
    exactly one process's batch, and the loss is computed on the whole batch's outputs
    (:func:`gather_output`), so the losses that compare recordings (supervised contrastive,
    center) see what one process sees. ``None`` when the batch has fewer recordings than
    processes (every process then leaves it out, so they keep stepping together).
    """
    if length < size:
        return None
    return list(range(rank, length, size))
