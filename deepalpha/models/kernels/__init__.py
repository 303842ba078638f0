"""Build and load the fused C kernels of ``mhc.c``, ``linrnn.c`` and ``gru.c`` (ctypes; no torch
headers, no extra dependency), compiled together into one library.

Legend of dimension letters (as in the C sources):
    b  batch (all leading dims flattened)    s, i, j  residual streams (n of them)
    d  features per stream                   t  time steps    n  rows (stocks)    h  hidden units

``library()`` returns the loaded ``ctypes.CDLL`` (argument types declared), or None when the
kernels are disabled (``DEEPALPHA_KERNELS=0``) or unavailable; callers then use eager torch ops
(see ``deepalpha.models.fused``, ``deepalpha.models.scan_kernels`` and
``deepalpha.models.gru_fused``). The first call in a process
compiles the sources unless a build of the same sources already sits in the cache folder::

    $CC (else cc, else gcc) -O3 -march=native -fno-trapping-math -fopenmp -shared -fPIC
    (retried without -march=native, then with -fopenmp-simd in place of -fopenmp: serial kernels)

into ``<cache>/kernels/deepalpha-<sha256 of sources, flags and CPU>-<platform>.so``, where ``<cache>`` is
``$DEEPALPHA_CACHE``, else ``$XDG_CACHE_HOME/deepalpha``, else ``~/.cache/deepalpha``. The build
goes to a temporary file that ``os.replace`` moves into place, so worker processes that race
each other all end up loading a complete library. Any failure (no compiler, compile or load
error) warns once per process and returns None.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

SOURCES = tuple(Path(__file__).with_name(name) for name in ("mhc.c", "linrnn.c", "gru.c"))
# included by the sources, so part of the build's cache key
HEADERS = (Path(__file__).with_name("fastmath.h"),)
SOURCE = SOURCES[0]
ABI_VERSION = 1  # mhc_abi_version() of the matching mhc.c
FLAG_SETS: tuple[tuple[str, ...], ...] = (
    ("-O3", "-march=native", "-fno-trapping-math", "-fopenmp", "-shared", "-fPIC"),
    ("-O3", "-fno-trapping-math", "-fopenmp", "-shared", "-fPIC"),  # a compiler without -march
    # a compiler without OpenMP: serial kernels
    ("-O3", "-fno-trapping-math", "-fopenmp-simd", "-shared", "-fPIC"),
)

_P, _I64, _I32, _F32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float
SIGNATURES: dict[str, tuple[type | None, list[type]]] = {
    "mhc_abi_version": (_I32, []),
    "mhc_max_n": (_I32, []),
    "mhc_sinkhorn_fwd": (_I32, [_P, _P, _P, _I64, _I32, _I32, _F32, _I32]),
    "mhc_sinkhorn_bwd": (_I32, [_P, _P, _P, _I64, _I32, _I32, _F32, _I32]),
    "mhc_pre_mix_fwd": (None, [_P, _P, _P, _I64, _I64, _I64, _I32]),
    "mhc_pre_mix_bwd": (None, [_P, _P, _P, _P, _P, _I64, _I64, _I64, _I32]),
    "mhc_post_mix_fwd": (None, [_P, _P, _P, _P, _P, _I64, _I64, _I64, _I32]),
    "mhc_post_mix_bwd": (None, [_P] * 9 + [_I64, _I64, _I64, _I32]),
    "linrnn_max_h": (_I32, []),
    "linrnn_fwd": (_I32, [_P, _P, _P, _I64, _I64, _I64, _I32, _I32]),
    "linrnn_bwd": (_I32, [_P, _P, _P, _P, _I64, _I64, _I64, _I32, _I32, _I32]),
    "gru_max_h": (_I32, []),
    "gru_simd_width": (_I32, []),
    "gru_tiles": (_I64, [_I64]),
    "gru_fwd": (_I32, [_P] * 6 + [_I64] * 6 + [_I32]),
    "gru_bwd": (_I32, [_P] * 8 + [_I64] * 6 + [_I32, _I32]),
}


class KernelBuildError(RuntimeError):
    """The C kernels could not be compiled or loaded (the message says why)."""


def enabled() -> bool:
    """False when ``DEEPALPHA_KERNELS=0`` (read on every call, so tests can toggle it)."""
    return os.environ.get("DEEPALPHA_KERNELS", "1").strip() != "0"


def cache_dir() -> Path:
    """``$DEEPALPHA_CACHE``, else ``$XDG_CACHE_HOME/deepalpha``, else ``~/.cache/deepalpha``."""
    if env := os.environ.get("DEEPALPHA_CACHE"):
        return Path(env)
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "deepalpha"
    return Path.home() / ".cache" / "deepalpha"


def compiler() -> list[str]:
    """The C compiler command: ``$CC`` (split like a shell would), else ``cc``, else ``gcc``."""
    if env := os.environ.get("CC", "").strip():
        return shlex.split(env)
    for name in ("cc", "gcc"):
        if shutil.which(name):
            return [name]
    raise KernelBuildError("no C compiler found (tried $CC, cc, gcc)")


def cpu_signature() -> str:
    """The CPU's model and instruction-set flags (Linux ``/proc/cpuinfo``), else the platform's
    processor string: builds use ``-march=native``, so a cache shared by machines with different
    CPUs (a home folder on a cluster) must keep one build per CPU."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    keep = [ln for ln in lines if ln.split(":")[0].strip() in ("model name", "flags", "Features")]
    return "\n".join(dict.fromkeys(keep))  # one copy per distinct line (not one per core)


def library_path(source: bytes) -> Path:
    """Cache path of the build of ``source``: keyed by its sha256, the flag sets, the CPU
    (``cpu_signature``) and the platform."""
    h = hashlib.sha256(source)
    h.update(repr(FLAG_SETS).encode())
    h.update(cpu_signature().encode())
    plat = f"{sys.platform}-{platform.machine() or 'unknown'}"
    return cache_dir() / "kernels" / f"deepalpha-{h.hexdigest()[:16]}-{plat}.so"


def build(sources: tuple[Path, ...] = SOURCES) -> Path:
    """Compile ``sources`` into one library in the cache unless already there; returns its path.

    Raises ``KernelBuildError`` (no compiler, or every flag set fails) or ``OSError``."""
    code = b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in (*sources, *HEADERS))
    target = library_path(code)
    if target.is_file():
        return target
    cc = compiler()
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for flags in FLAG_SETS:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.stem + ".", suffix=".tmp")
        os.close(fd)
        try:
            proc = subprocess.run(
                [*cc, *flags, "-o", tmp, *map(str, sources), "-lm"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if proc.returncode == 0:
                os.replace(tmp, target)  # atomic: a racing process loads either build, whole
                return target
        except (OSError, subprocess.SubprocessError) as err:  # missing program, timeout
            raise KernelBuildError(f"cannot run C compiler {cc[0]!r}: {err}") from err
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        errors.append(f"{shlex.join([*cc, *flags])}: {proc.stderr.strip()[-500:]}")
    names = ", ".join(p.name for p in sources)
    raise KernelBuildError(f"compiling {names} failed: " + " | ".join(errors))


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    for name, (restype, argtypes) in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    if (version := lib.mhc_abi_version()) != ABI_VERSION:
        raise KernelBuildError(f"library ABI version {version}, expected {ABI_VERSION}")
    return lib


@functools.lru_cache(maxsize=1)
def _load() -> ctypes.CDLL | None:
    """Build (if needed) and load once per process; None after a warning on any failure."""
    try:
        return _declare(ctypes.CDLL(str(build())))
    except (KernelBuildError, OSError, AttributeError) as err:
        warnings.warn(
            f"deepalpha fused C kernels unavailable, using eager torch ops: {err}",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def library() -> ctypes.CDLL | None:
    """The loaded kernels, or None (disabled by ``DEEPALPHA_KERNELS=0``, or unavailable)."""
    return _load() if enabled() else None


def clear_cache() -> None:
    """Forget this process's handle so that the next ``library()`` builds/loads again (tests)."""
    _load.cache_clear()
