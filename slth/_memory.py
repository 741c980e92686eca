"""Memory guard: estimate an allocation, compare it with a budget, refuse with a clear message.

Every large allocation in slth (a construction's source, a layer's subset-sum
instances and masks, the subset-sum solver's buffers) is preceded by an
estimate of the bytes it is about to allocate and a call to
:func:`check_memory`. Past the budget, :class:`slth.errors.LimitError` is raised
*before* anything is allocated, with the estimate, the budget and what to change
(a smaller width or batch), instead of numpy's raw ``MemoryError`` or the
process being killed by the kernel's out-of-memory killer.

The budget
----------
In order of precedence:

1. the ``budget`` argument of :func:`check_memory` (callers that know better);
2. :func:`set_memory_budget` / the context manager :func:`using_memory_budget`
   (process-wide);
3. the environment variable ``SLTH_MEMORY_BUDGET``, read at every check: a number
   of bytes (``"8000000000"``), a size with a unit (``"8GiB"``, ``"500MB"``,
   ``"1.5G"``), a percentage of the available memory (``"80%"``) or
   ``"unlimited"`` (no guard);
4. the default: :data:`DEFAULT_FRACTION` (50%) of :func:`available_memory`, read
   at call time. Half, because an estimate covers the arrays slth allocates, not
   the interpreter, numba's compiled code or what other processes allocate
   meanwhile, and because exceeding the RAM is far worse (the process is killed
   or the machine swaps) than refusing a request that would have just fitted.

Units: ``B``; decimal ``kB``/``KB``, ``MB``, ``GB``, ``TB`` (powers of 1000); binary
``KiB``, ``MiB``, ``GiB``, ``TiB`` and the bare letters ``K``, ``M``, ``G``, ``T``
(powers of 1024). Case-insensitive, with or without a space.

Cost
----
Estimates are a few integer operations per call (never per instance or per
weight). An estimate up to :data:`TINY_BYTES` (1 MiB) is never refused, whatever
the budget, and costs one comparison (one subset-sum instance, a small layer).
Reading the available memory costs tens of microseconds (a few small files),
so under a budget that is a fraction of it (the default) an estimate up to
:data:`SMALL_BYTES` (16 MiB) is accepted without reading it.
"""

from __future__ import annotations

import functools
import math
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import InputError, LimitError, format_value

__all__ = [
    "DEFAULT_FRACTION",
    "ENV_VAR",
    "SMALL_BYTES",
    "TINY_BYTES",
    "available_memory",
    "check_memory",
    "format_bytes",
    "format_count",
    "memory_budget",
    "parse_bytes",
    "set_memory_budget",
    "using_memory_budget",
]

#: Fraction of :func:`available_memory` used as the budget when none is set.
DEFAULT_FRACTION = 0.5
#: Environment variable overriding the default budget (read at every check).
ENV_VAR = "SLTH_MEMORY_BUDGET"
#: Estimates up to this many bytes are never refused, whatever the budget (a
#: budget below it acts as this much): the check then costs one comparison.
TINY_BYTES = 1 << 20
#: Under the default budget, estimates up to this many bytes skip reading the
#: system's available memory (an explicit budget is always enforced).
SMALL_BYTES = 16 << 20
#: Used when the available memory cannot be read at all (no /proc, no sysconf).
_FALLBACK_AVAILABLE = 4 << 30
#: Budget value meaning "no limit".
_UNLIMITED = sys.maxsize

_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kib": 1 << 10, "kb": 10**3,
    "m": 1 << 20, "mib": 1 << 20, "mb": 10**6,
    "g": 1 << 30, "gib": 1 << 30, "gb": 10**9,
    "t": 1 << 40, "tib": 1 << 40, "tb": 10**12,
    "p": 1 << 50, "pib": 1 << 50, "pb": 10**15,
}
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_PERCENT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%\s*$")
_DOMAIN = ("a number of bytes > 0, a size such as '8GiB', '500MB' or '1.5G', a percentage of "
           "the available memory such as '80%', or 'unlimited'")

# (budget in bytes or a fraction of the available memory, description) set by set_memory_budget
_override: tuple[int | float, str] | None = None


# ----------------------------------------------------------------------------- formatting
def format_bytes(n: int | float) -> str:
    """``n`` bytes in binary units, three significant digits: ``"13.1 GiB"``, ``"512 B"``.

    Parameters
    ----------
    n : int or float
        A byte count >= 0 (``sys.maxsize`` prints as ``"unlimited"``).

    Returns
    -------
    str
    """
    if n >= _UNLIMITED:
        return "unlimited"
    v = float(n)
    if v < 1024:
        return f"{int(v)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        v /= 1024.0
        if v < 1024 or unit == "EiB":
            break
    if v < 9.995:
        return f"{v:.2f} {unit}"
    if v < 99.95:
        return f"{v:.1f} {unit}"
    return f"{v:.0f} {unit}"


def format_count(n: int) -> str:
    """A count for messages, three significant digits: ``"2.86e9"``, ``"123456"`` below 1e6."""
    if n < 10**6:
        return str(int(n))
    mantissa, exponent = f"{float(n):.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def parse_bytes(value: int | float | str, *, name: str = "budget") -> int | float:
    """Parse a memory size: bytes (int), ``"8GiB"``, ``"500MB"``, ``"80%"`` or ``"unlimited"``.

    Parameters
    ----------
    value : int, float or str
        See the module docstring for the accepted units.
    name : str, default "budget"
        How to name the value in the error message (a parameter or ``SLTH_MEMORY_BUDGET``).

    Returns
    -------
    int or float
        Bytes (an int >= 1; ``sys.maxsize`` for "unlimited"), or a float in (0, 1]
        for a percentage (a fraction of the available memory, read at each check).

    Raises
    ------
    InputError
        Anything else, naming ``name``, the accepted forms and the value received.
    """
    def bad() -> InputError:
        return InputError(f"`{name}` must be {_DOMAIN}; received {format_value(value)}")

    if isinstance(value, bool):
        raise bad()
    if isinstance(value, (int, float)) or type(value).__module__ == "numpy":
        try:
            v = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise bad() from None
        if not math.isfinite(v) or v < 1:
            raise bad()
        return int(v)
    if not isinstance(value, str):
        raise bad()
    text = value.strip().lower()
    if text in ("unlimited", "none", "inf", "infinite"):
        return _UNLIMITED
    m = _PERCENT_RE.match(text)
    if m:
        frac = float(m.group(1)) / 100.0
        if not 0.0 < frac <= 1.0:
            raise bad()
        return frac
    m = _SIZE_RE.match(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise bad()
    v = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not math.isfinite(v) or v < 1:
        raise bad()
    return int(v)


# ----------------------------------------------------------------------------- the machine
def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:  # "max" (cgroup v2: no limit) or garbage
        return None


def _stat_field(path: str, field: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                key, _, val = line.partition(" ")
                if key == field:
                    return int(val)
    except (OSError, ValueError):
        pass
    return 0


def _meminfo() -> int | None:
    """MemAvailable from /proc/meminfo (bytes); older kernels: MemFree + Buffers + Cached."""
    fields: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    fields[key] = int(parts[0]) * 1024  # values are in kB
                if key == "MemAvailable":  # the third line: stop reading
                    break
    except (OSError, ValueError):
        return None
    if "MemAvailable" in fields:
        return fields["MemAvailable"]
    if "MemFree" in fields:
        return fields["MemFree"] + fields.get("Buffers", 0) + fields.get("Cached", 0)
    return None


def _cgroup_mounts() -> tuple[str | None, str | None]:
    """Mount points of the cgroup v2 hierarchy and of the v1 memory controller, if any."""
    v2 = v1 = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fs = right.split()
                cols = left.split()
                if len(fs) < 1 or len(cols) < 5:
                    continue
                if fs[0] == "cgroup2" and v2 is None:
                    v2 = cols[4]
                elif fs[0] == "cgroup" and len(fs) >= 3 and "memory" in fs[2].split(","):
                    v1 = cols[4]
    except OSError:
        pass
    return v2, v1


def _cgroup_paths() -> tuple[str | None, str | None]:
    """This process's cgroup path in the v2 hierarchy and in the v1 memory controller."""
    v2 = v1 = None
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) != 3:
                    continue
                if parts[0] == "0" and parts[1] == "":
                    v2 = parts[2]
                elif "memory" in parts[1].split(","):
                    v1 = parts[2]
    except OSError:
        pass
    return v2, v1


@functools.lru_cache(maxsize=1)
def _cgroup_chain() -> tuple[tuple[str, str, str, str], ...]:
    """Per memory cgroup of this process and its ancestors: (limit, usage, stat, field) paths.

    cgroup v2 (``memory.max``, ``memory.current``, ``inactive_file``) and v1
    (``memory.limit_in_bytes``, ``memory.usage_in_bytes``, ``total_inactive_file``).
    The cgroup's directory is its mount point joined with the path in
    ``/proc/self/cgroup``; inside a container whose mount shows only its own
    cgroup, that path does not exist and the mount itself is the cgroup. Found
    once per process (the files' values are read at every call).
    """
    mount_v2, mount_v1 = _cgroup_mounts()
    path_v2, path_v1 = _cgroup_paths()
    chain = []
    for mount, path, files in (
        (mount_v2, path_v2, ("memory.max", "memory.current", "inactive_file")),
        (mount_v1, path_v1, ("memory.limit_in_bytes", "memory.usage_in_bytes",
                             "total_inactive_file")),
    ):
        if mount is None or path is None:
            continue
        root = os.path.normpath(mount)
        d = os.path.normpath(os.path.join(mount, path.lstrip("/")))
        if not os.path.isdir(d):
            d = root
        while True:
            chain.append((os.path.join(d, files[0]), os.path.join(d, files[1]),
                          os.path.join(d, "memory.stat"), files[2]))
            if len(d) <= len(root):
                break
            d = os.path.dirname(d)
    return tuple(chain)


def _cgroup_available() -> int | None:
    """Smallest (limit - working set) over the memory cgroups holding this process, or None.

    The working set is the usage minus the inactive file cache (reclaimable
    without swapping), as container runtimes compute it. None: no limit set.
    """
    best: int | None = None
    for limit_path, usage_path, stat_path, field in _cgroup_chain():
        limit = _read_int(limit_path)
        # v2 writes "max" for no limit (read as None); v1 a huge number (about 2^63)
        if limit is None or limit >= (1 << 60):
            continue
        usage = (_read_int(usage_path) or 0) - _stat_field(stat_path, field)
        room = max(0, limit - max(usage, 0))
        best = room if best is None else min(best, room)
    return best


def _sysconf_available() -> int | None:
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            n = os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            continue
        if n > 0:
            return int(n)
    return None


def _windows_available() -> int | None:  # pragma: no cover - not run on Linux CI
    try:
        import ctypes

        class _Status(ctypes.Structure):
            _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                        ("ullTotalPhys", ctypes.c_ulonglong),
                        ("ullAvailPhys", ctypes.c_ulonglong),
                        ("ullTotalPageFile", ctypes.c_ulonglong),
                        ("ullAvailPageFile", ctypes.c_ulonglong),
                        ("ullTotalVirtual", ctypes.c_ulonglong),
                        ("ullAvailVirtual", ctypes.c_ulonglong),
                        ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

        st = _Status()
        st.dwLength = ctypes.sizeof(_Status)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(st)):  # type: ignore[attr-defined]
            return int(st.ullAvailPhys)
    except Exception:
        return None
    return None


def available_memory() -> int:
    """Bytes this process can still allocate without swapping or being killed, read now.

    Linux: ``MemAvailable`` of ``/proc/meminfo`` (the kernel's estimate of the
    memory available for new allocations, page cache included), capped by the
    headroom of the process's memory cgroup when a limit is set (cgroup v2
    ``memory.max`` or v1 ``memory.limit_in_bytes``, minus the usage net of the
    inactive file cache, over the cgroup and its ancestors): in a container the
    cgroup limit, not the host's RAM, is what triggers the out-of-memory killer.
    Elsewhere: available physical pages from ``os.sysconf`` (``SC_AVPHYS_PAGES``,
    else the total ``SC_PHYS_PAGES``), ``GlobalMemoryStatusEx`` on Windows, and
    4 GiB if nothing can be read. Swap is not counted.

    Returns
    -------
    int
        Bytes, >= 0.
    """
    avail = _meminfo()
    if avail is None:
        avail = _windows_available() if os.name == "nt" else None
    if avail is None:
        avail = _sysconf_available()
    if avail is None:
        avail = _FALLBACK_AVAILABLE
    if sys.platform.startswith("linux"):
        room = _cgroup_available()
        if room is not None:
            avail = min(avail, room)
    return int(avail)


# ----------------------------------------------------------------------------- the budget
def _describe_fraction(frac: float, available: int | None = None) -> str:
    if available is None:
        return f"{100 * frac:g}% of available memory"
    return f"{100 * frac:g}% of the {format_bytes(available)} available"


_env_cache: dict[str, int | float] = {}


def _current() -> tuple[int | float, str]:
    """The budget setting in force (bytes or a fraction of the available memory) and its origin.

    The origin is a format string with ``{frac}`` where a fraction is described.
    """
    if _override is not None:
        return _override
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        v = _env_cache.get(env)
        if v is None:
            v = parse_bytes(env, name=ENV_VAR)
            _env_cache[env] = v
        how = "{frac}, " if isinstance(v, float) else ""
        return v, f"{how}from {ENV_VAR}={env.strip()!r}"
    return DEFAULT_FRACTION, (
        f"{{frac}}; set {ENV_VAR} or slth.set_memory_budget to change it")


def memory_budget() -> int:
    """The memory budget in bytes, as :func:`check_memory` would use it now.

    :func:`set_memory_budget` if set, else ``SLTH_MEMORY_BUDGET`` if set, else
    ``DEFAULT_FRACTION`` (0.5) times :func:`available_memory` read now (see the
    module docstring). ``sys.maxsize`` means unlimited.

    Returns
    -------
    int
        Bytes.

    Raises
    ------
    InputError
        ``SLTH_MEMORY_BUDGET`` holds something that is not a size.
    """
    value, _ = _current()
    if isinstance(value, float):
        return int(value * available_memory())
    return int(value)


def _setting_text(v: int | float) -> int | str:
    if isinstance(v, float):
        return f"{100 * v:g}%"
    return "unlimited" if v >= _UNLIMITED else int(v)


def set_memory_budget(budget: int | str | None) -> int | str | None:
    """Set the process-wide memory budget; None restores the default (or ``SLTH_MEMORY_BUDGET``).

    Parameters
    ----------
    budget : int, str or None
        Bytes (int >= 1), a size such as ``"8GiB"`` or ``"500MB"``, a percentage
        of the available memory such as ``"80%"`` (applied at each check), or
        ``"unlimited"``. Takes precedence over ``SLTH_MEMORY_BUDGET``.

    Returns
    -------
    int, str or None
        The previous setting (None: none was set), to restore it later.

    Raises
    ------
    InputError
        ``budget`` is not one of the forms above, naming ``budget``.
    """
    global _override
    previous = _override
    if budget is None:
        _override = None
    else:
        v = parse_bytes(budget, name="budget")
        if isinstance(v, float):
            how = "{frac}"
        elif v >= _UNLIMITED:
            how = "unlimited"
        else:
            how = format_bytes(v)
        _override = (v, f"{how}, set by slth.set_memory_budget")
    return None if previous is None else _setting_text(previous[0])


@contextmanager
def using_memory_budget(budget: int | str | None) -> Iterator[None]:
    """Context manager: :func:`set_memory_budget` inside the block, the previous setting after.

    Parameters
    ----------
    budget : int, str or None
        As for :func:`set_memory_budget` (None: the default or ``SLTH_MEMORY_BUDGET``).

    Examples
    --------
    >>> from slth._memory import using_memory_budget, memory_budget
    >>> with using_memory_budget("1GiB"):
    ...     memory_budget()
    1073741824
    """
    global _override
    saved = _override
    set_memory_budget(budget)
    try:
        yield
    finally:
        _override = saved


def check_memory(n_bytes: int, *, what: str, alternative: str,
                 budget: int | None = None) -> None:
    """Refuse an allocation of about ``n_bytes`` bytes past the memory budget.

    Call it *before* allocating, with an honest estimate of everything the step
    is about to allocate at its peak (say in a comment how it was derived).

    Parameters
    ----------
    n_bytes : int
        Estimated bytes the step will allocate.
    what : str
        Who needs it, for the message: ``"pensia2020.construct: the source (6
        float64 arrays, 2.86e9 weights)"``.
    alternative : str
        What the caller can change, for the message: ``"pass a smaller `n`"``.
    budget : int, optional
        Bytes; overrides every other setting (see the module docstring).

    Raises
    ------
    LimitError
        ``n_bytes`` exceeds the budget. One line: ``"<what> needs an estimated
        13.1 GiB but the memory budget is 11.5 GiB (50% of the 23.0 GiB available;
        set SLTH_MEMORY_BUDGET or slth.set_memory_budget to change it);
        <alternative>"``.
    InputError
        ``SLTH_MEMORY_BUDGET`` is set to something that is not a size.
    """
    if n_bytes <= TINY_BYTES:  # never refused: keeps small calls free
        return
    if budget is not None:
        limit, how = int(budget), "passed as `budget`"
    else:
        value, how = _current()
        if isinstance(value, float):
            # a fraction of the available memory: small requests skip reading it
            if n_bytes <= SMALL_BYTES:
                return
            avail = available_memory()
            limit = int(value * avail)
            how = how.replace("{frac}", _describe_fraction(value, avail))
        else:
            limit = int(value)
    if n_bytes <= limit:
        return
    raise LimitError(
        f"{what} needs an estimated {format_bytes(n_bytes)} but the memory budget is "
        f"{format_bytes(limit)} ({how}); {alternative}"
    )
