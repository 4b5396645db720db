"""Why a Triton kernel saw a "CPU pointer" in a CUDA graph capture: the facts, printed as JSON for one allocator.

Usage (CUDA machine; the allocator is fixed when CUDA starts, so one process per allocator)::

    PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync python -m bench.probe_capture
    PYTORCH_CUDA_ALLOC_CONF=backend:native python -m bench.probe_capture

Prints ``cuPointerGetAttribute(CU_POINTER_ATTRIBUTE_DEVICE_POINTER)`` (the call Triton's launcher makes on every
tensor argument; 0 = CUDA_SUCCESS, 1 = CUDA_ERROR_INVALID_VALUE, which Triton reports as "Pointer argument (at N)
cannot be accessed from Triton (cpu tensor?)") for a tensor allocated before a capture, one allocated inside it,
and the same one after the capture and after the first replay; then what the GLUMBConv kernel does inside a
capture through Triton's normal launcher and with raw device pointers (the pack's launch there), and whether the
replayed raw launch equals the reference. The probe leaks the captured objects on purpose and leaves with
``os._exit`` (it only reports facts).
"""

from __future__ import annotations

import ctypes
import json
import os

import torch

CU_POINTER_ATTRIBUTE_DEVICE_POINTER = 3


def pointer_status(tensor: torch.Tensor) -> int:
    """The CUresult of ``cuPointerGetAttribute(DEVICE_POINTER)`` for the tensor's address."""
    libcuda = ctypes.CDLL("libcuda.so.1")
    value = ctypes.c_uint64()
    return int(libcuda.cuPointerGetAttribute(ctypes.byref(value), CU_POINTER_ATTRIBUTE_DEVICE_POINTER,
                                             ctypes.c_uint64(tensor.data_ptr())))


def main() -> dict[str, object]:
    from acestep_core.kernels import glu_depthwise as glu

    facts: dict[str, object] = {"allocator": torch.cuda.get_allocator_backend(), "torch": torch.__version__}
    import triton

    facts["triton"] = triton.__version__
    before = torch.randn(1024, device="cuda")
    u = torch.randn(2, 37, 256, device="cuda", dtype=torch.bfloat16)
    weight = torch.randn(256, 1, 3, device="cuda", dtype=torch.bfloat16) * 0.3
    bias = torch.randn(256, device="cuda", dtype=torch.bfloat16) * 0.1
    glu._triton_op()  # build the kernel outside the capture
    glu._launch_raw(u, weight, bias)
    keep: list[object] = []
    graph, stream = torch.cuda.CUDAGraph(), torch.cuda.Stream()
    with torch.cuda.graph(graph, stream=stream):
        inside = before * 2
        facts["status_allocated_before_capture"] = pointer_status(before)
        facts["status_allocated_inside_capture"] = pointer_status(inside)
        u_inside = u * 1  # the kernel's input made inside the capture, as the expand conv's output is
        try:
            keep.append(glu._triton_op()[0](u_inside, weight, bias))
            facts["triton_launcher_inside_capture"] = "ok"
        except Exception as error:  # noqa: BLE001 - the fact being probed
            facts["triton_launcher_inside_capture"] = f"{type(error).__name__}: {error}"
        raw = glu._launch_raw(u_inside, weight, bias)
    facts["status_inside_after_capture_end"] = pointer_status(inside)
    graph.replay()
    torch.cuda.synchronize()
    facts["status_inside_after_replay"] = pointer_status(inside)
    reference = glu.silu_depthwise_glu_reference(u, weight, bias)
    facts["raw_launch_in_graph_max_abs_vs_reference"] = float((raw.float() - reference.float()).abs().max())
    facts["reference_max_abs"] = float(reference.float().abs().max())
    keep += [graph, inside, u_inside, raw]
    return facts


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
    os._exit(0)
