"""Test-session setup. The MKL switches below must be in the environment before torch (which links MKL
statically) makes its first MKL call, so they come before ``import torch``.

The goldens were recorded on a non-Intel CPU (AMD, with AVX-512: see ``tests/reference_kernels.py``). There
MKL 2024.2 (inside torch 2.11) runs its vendor-neutral VML kernels (``exp``, ``log``, ``tanh``, ``erf``,
``sqrt``) and its Zen sgemm kernels; on an Intel CPU it picks AVX-512 VML kernels, whose last bits differ
(e.g. 3 of the 128 timestep frequencies ``exp(-ln(1e4) k/128)``), and AVX-512 sgemm kernels, which sum in
another order. On an Intel Sapphire Rapids host that put 7 golden comparisons 1.1x-1.6x past their bounds
(worst element) and broke the bit-exact filterbank check.

* ``MKL_VML_DEBUG_CPU_TYPE=0`` (MKL's VML debug switch, read by ``mkl_vml_serv_cpu_detect``) selects the VML
  kernels MKL uses on non-Intel CPUs; their results are bit-identical to those of an MKL that sees a
  non-Intel vendor (mel filterbank, timestep features and UMT5 states then equal the goldens exactly).
* ``MKL_CBWR=AVX2,STRICT`` selects the reproducibility branch closest to the Zen sgemm kernel (bit-identical
  to it for m >= 7 and n >= 16 in a 384-shape probe, vs. none with K >= 512 for the AVX-512 kernel). It also
  moves MKL's FFT to its AVX2 code; the goldens' FFT (MKL's non-Intel code) is not reachable by a switch
  without changing sgemm too.

On a non-Intel CPU both are no-ops (checked by making MKL see a non-Intel vendor: VML, sgemm and FFT results
bit-identical with and without them). A value already in the environment wins.
"""

from __future__ import annotations

import os

for _name, _value in (("MKL_VML_DEBUG_CPU_TYPE", "0"), ("MKL_CBWR", "AVX2,STRICT")):
    os.environ.setdefault(_name, _value)

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.parity import PARITY_DIR, REQUIRE_PARITY_ENV, missing_parity_entries  # noqa: E402


def pytest_sessionstart(session: pytest.Session) -> None:
    """With ACESTEP_REQUIRE_PARITY=1 (CI), a missing or incomplete golden data folder fails the whole run."""
    if os.environ.get(REQUIRE_PARITY_ENV, "") in ("", "0"):
        return
    missing = missing_parity_entries()
    if missing:
        pytest.exit(f"{REQUIRE_PARITY_ENV} is set but the golden data folder {PARITY_DIR} lacks {missing}; "
                    "put ../shared beside the checkout or set ACESTEP_SHARED_DIR", returncode=3)


@pytest.fixture(scope="session", autouse=True)
def _deterministic_threads():
    """Goldens were recorded with 1 CPU thread; keep float32 reductions comparable.

    Session-scoped so it is active before any module-scoped fixture computes something."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest hook signature
    """With ACESTEP_PARITY_REPORT set, print the worst measured error per golden group."""
    import json
    import os
    from collections import defaultdict

    path = os.environ.get("ACESTEP_PARITY_REPORT")
    if not path or not os.path.exists(path):
        return
    worst: dict[str, tuple[float, str, str]] = defaultdict(lambda: (-1.0, "", ""))
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            group = row["name"].split(":", 1)[0].removeprefix("modules/").removesuffix(".safetensors")
            if row["max_abs_err"] > worst[group][0]:
                worst[group] = (row["max_abs_err"], row["name"], row["category"])
    terminalreporter.section("golden parity: worst max abs error per group")
    for group, (err, name, category) in sorted(worst.items()):
        terminalreporter.write_line(f"{group:32s} {err:.3e}  ({name}, {category})")
