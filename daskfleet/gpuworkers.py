"""The container of one GPU's worker: its command, environment and labels.

:mod:`daskfleet.budget` decides each GPU worker's GPU, CPUs and memory;
:mod:`daskfleet.specs` turns that into a container with the pieces here.

- ``dask-cuda`` runs ``dask cuda worker`` (RMM pool, device memory spilling);
  ``plain`` runs ``dask worker --nworkers 1``. Without ``gpu_worker`` in the
  inventory, dask-cuda is used when the image has it (its label says so).
- Either way the worker is named ``<host>-gpu<index>``, offers the resource
  ``GPU=1`` and sees its GPU only: Docker hands it over by UUID, so inside
  the container it is device 0. ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` makes CUDA
  number devices as ``nvidia-smi`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daskfleet.budget import GpuWorkerBudget
from daskfleet.inventory.model import GpuWorker, Host

#: The image label that records the dask-cuda version installed in it.
DASK_CUDA_LABEL = "org.daskfleet.dask-cuda"
#: Container label with the UUID of the GPU the container was given.
LABEL_GPU = "daskfleet.gpu"
GPU_ENVIRONMENT = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def gpu_worker_kind(host: Host, image_labels: Mapping[str, str]) -> GpuWorker:
    """The inventory's ``gpu_worker``, else dask-cuda when the image has it."""
    if host.gpu_worker is not None:
        return host.gpu_worker
    return "dask-cuda" if image_labels.get(DASK_CUDA_LABEL) else "plain"


def gpu_container_name(cluster: str, host: str, index: int) -> str:
    return f"daskfleet-{cluster}-worker-{host}-gpu{index}"


def gpu_worker_problems(
    path: str, host: Host, image_labels: Mapping[str, str]
) -> list[str]:
    """dask-cuda settings on a host whose GPU workers are plain ones."""
    kind = gpu_worker_kind(host, image_labels)
    if host.gpus is None or kind == "dask-cuda" or not _dask_cuda_settings(host):
        return []
    names = " and ".join(_dask_cuda_settings(host))
    why = "gpu_worker is plain" if host.gpu_worker else "the image lacks dask-cuda"
    return [
        f"{host.name}: {names} need dask-cuda workers but {why}; add dask-cuda to image.packages or remove {names} in {path}"
    ]


def gpu_worker_parts(
    kind: GpuWorker, scheduler: str, host: Host, gpu: GpuWorkerBudget, resources: str
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The command of ``gpu``'s worker and the settings that shape it."""
    layout = gpu.layout
    program = ("dask", "cuda", "worker") if kind == "dask-cuda" else ("dask", "worker")
    command: tuple[str, ...] = (
        *(*program, scheduler),
        *("--name", layout.names(host.name)[0], "--host", host.address),
        *("--nthreads", str(layout.nthreads)),
        *("--memory-limit", str(layout.memory_limit)),
        *("--resources", resources),
    )
    if kind == "plain":
        command += ("--nworkers", "1")
    details: dict[str, Any] = {
        "address": host.address,
        "scheduler": scheduler,
        "gpu_worker": kind,
        "gpu": gpu.uuid,
        "cpuset": list(gpu.cpuset),
        "nthreads": layout.nthreads,
        "memory_limit": layout.memory_limit,
        "resources": resources,
    }
    if kind == "dask-cuda":
        for option, value in _dask_cuda_settings(host).items():
            command += (f"--{option.replace('_', '-')}", str(value))
            details[option] = value
    return command, details


def _dask_cuda_settings(host: Host) -> dict[str, int]:
    """The host's dask-cuda options that are set, by variable name."""
    options = {
        "rmm_pool_size": host.rmm_pool_size,
        "device_memory_limit": host.device_memory_limit,
    }
    return {k: v for k, v in options.items() if v is not None}
