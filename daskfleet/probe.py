"""The probe task run on each worker after a deploy.

Workers do not have daskfleet installed, so the probe must travel by value.
distributed pickles importable functions by reference; a function made
inside another cannot be, so distributed falls back to cloudpickle and sends
its code. Keep it free of daskfleet imports and module globals.
"""

from __future__ import annotations

from collections.abc import Callable


def make_probe() -> Callable[[], dict[str, str]]:
    """A task that reports the worker it ran on and the GPUs it sees.

    ``gpus`` is what the NVIDIA container runtime was told to expose
    (``NVIDIA_VISIBLE_DEVICES``, GPU UUIDs as Docker passed them), else
    ``CUDA_VISIBLE_DEVICES``; empty when neither is set.
    """

    def probe() -> dict[str, str]:
        import os

        from distributed import get_worker

        if sum(range(1000)) != 499500:
            return {"name": "arithmetic failed", "gpus": ""}
        env = os.environ
        gpus = env.get("NVIDIA_VISIBLE_DEVICES") or env.get("CUDA_VISIBLE_DEVICES")
        return {"name": str(get_worker().name), "gpus": gpus or ""}

    return probe
