"""The decode step's small operations in C (decode_step.c), built once with the machine's C compiler.

Why: for one chat stream the ~25 torch ops per layer around the weight kernels cost about as much as the
kernels (docs/bench/backend.md); in C they are four calls per layer. The library is compiled on first use
(~1 s) into the workspace, keyed by the source, the compiler and its flags, and loaded with ctypes. Where
there is no compiler, the build fails or DISTILL_NATIVE_STEP=0, `library()` is None and the decoder keeps
its torch ops (the same numbers up to float rounding; tests run both).

The flags ask for AVX2 + FMA on any x86 CPU that has them (torch's own check), AVX512 or not, so both kinds
of CPU run the same code; elsewhere plain -O3. The reassociation flags let the compiler vectorise the sums
(dot products, norms) as torch's own kernels do.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import threading
from pathlib import Path

from pipeline import config, workspace

log = logging.getLogger(__name__)

SOURCES = (Path(__file__).with_name("decode_step.c"), Path(__file__).with_name("int4_linear.c"))
BASE_FLAGS = ("-O3", "-std=c99", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math", "-fno-signed-zeros",
              "-fassociative-math", "-ffp-contract=fast")
BUILD_SECONDS = 120
_BUILDING = threading.Lock()  # the engine's load thread and a test's second engine may ask at once

_P = ctypes.c_void_p
_I = ctypes.c_int
_SIGNATURES = {
    "add_norm": [_P, _P, _I, _P, _I, _I, ctypes.c_float, _P, _P],
    "attend": [_P, _I, _I, _I, _I, _I, _P, _P, _P, _P, _I, _P, _P, _P],
    "silu_mul": [_P, _I, _I, _I, _P, _P],
    "int4_linear": [_P, _I, _I, _P, _I, _P, _I],
}


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _flag_sets() -> list[tuple[str, ...]]:
    """Flags to try in order: AVX2 + FMA where the CPU has them (torch's own check), then without; each
    with OpenMP first (int4_linear.c's threads), then without (one thread). Only those two extensions:
    -march=x86-64-v3 would also allow BMI2, MOVBE..., which a VM may hide."""
    import torch

    isa = [("-mavx2", "-mfma"), ()] if platform.machine().lower() in ("x86_64", "amd64") and \
        torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") else [()]
    return [(*BASE_FLAGS, *extra, *threads) for extra in isa for threads in (("-fopenmp",), ())]


def _build(cc: str) -> Path:
    """The compiled library's path, built now unless an identical build is already there. Written aside
    and renamed, so processes sharing a workspace never load a half-written file."""
    source = b"\0".join(path.read_bytes() for path in SOURCES)
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    errors = []
    for flags in _flag_sets():
        key = hashlib.sha256(b"\0".join([source, version.encode(), " ".join(flags).encode()])).hexdigest()[:16]
        path = workspace.subdir("native") / f"decode_step-{key}.so"
        if path.is_file():
            return path
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        done = subprocess.run([cc, *flags, "-o", str(tmp), *map(str, SOURCES), "-lm"], capture_output=True, text=True,
                              timeout=BUILD_SECONDS)
        if done.returncode == 0:
            os.replace(tmp, path)
            return path
        tmp.unlink(missing_ok=True)
        errors.append(done.stderr.strip()[-400:])
    raise OSError(f"{cc} could not build {', '.join(p.name for p in SOURCES)}: {errors[-1]}")


@functools.cache
def library() -> ctypes.CDLL | None:
    """The loaded C helpers, or None (not wanted, no compiler, or the build failed: logged once)."""
    if not config.NATIVE_STEP.get():
        return None
    cc = _compiler()
    if cc is None:
        log.info("no C compiler found: the decoder's small ops stay in torch")
        return None
    try:
        with _BUILDING:
            lib = ctypes.CDLL(str(_build(cc)))
        for name, argtypes in _SIGNATURES.items():
            function = getattr(lib, name)
            function.argtypes, function.restype = argtypes, None
    except (OSError, AttributeError, subprocess.SubprocessError) as err:
        log.warning("the decoder's C helpers are unavailable, its small ops stay in torch: %s", err)
        return None
    log.info("decode step: C helpers loaded (built with %s)", cc)
    return lib
