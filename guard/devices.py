"""Device selection, in one place.

Every component that runs a model asks here which device and which ONNX Runtime providers to use,
so moving to a GPU machine is one setting (``GUARD_DEVICE``) rather than a hunt through the code.
"""

from __future__ import annotations

from typing import Literal

DeviceSetting = Literal["auto", "cpu", "cuda"]


def onnx_providers(device: DeviceSetting) -> list[str]:
    """ONNX Runtime execution providers for ``device``, best first, always ending with the CPU."""
    import onnxruntime

    available = set(onnxruntime.get_available_providers())
    wants_cuda = device in ("auto", "cuda")
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        from guard.errors import ConfigurationError

        raise ConfigurationError(
            "GUARD_DEVICE=cuda but ONNX Runtime has no CUDA provider here; "
            "install onnxruntime-gpu or set GUARD_DEVICE=cpu"
        )
    if wants_cuda and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def torch_device(device: DeviceSetting) -> str:
    """The torch device for ``device``: CUDA when asked for or when ``auto`` finds it, else the
    CPU."""
    import torch

    has_cuda = bool(torch.cuda.is_available())
    if device == "cuda" and not has_cuda:
        from guard.errors import ConfigurationError

        raise ConfigurationError(
            "GUARD_DEVICE=cuda but torch sees no CUDA device; install a CUDA build of torch "
            "or set GUARD_DEVICE=cpu"
        )
    return "cuda" if device in ("auto", "cuda") and has_cuda else "cpu"


def configure_faiss_threads(threads: int) -> None:
    """Set FAISS's OpenMP thread count (process-wide).

    A request searches with a handful of faces; on this 2-core machine two OpenMP threads made a
    single flat-index query ~2.5x slower than one (docs/benchmarks.md), so the default is 1.
    Raise it for batch workloads (blocklist rebuilds, bulk audits)."""
    import faiss

    faiss.omp_set_num_threads(max(1, threads))


def configure_blas_threads(threads: int) -> None:
    """Set NumPy's BLAS thread count (process-wide): the face descriptor is a chain of matrix
    products, and concurrent requests already keep the cores busy (see ``blas_threads``)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=max(1, threads), user_api="blas")


def dlib_uses_cuda() -> bool:
    """Whether the installed dlib was built with CUDA (dlib picks the device itself)."""
    import dlib

    return bool(getattr(dlib, "DLIB_USE_CUDA", False))
