"""The machine a benchmark or a tuned setting belongs to: CPU model, cores, the instruction sets that matter."""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# /proc/cpuinfo flags that change what onnxruntime's kernels can do (fp32 GEMMs, int8 dot products, AMX tiles)
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile",
             "amx_int8", "amx_bf16")


@dataclass
class Machine:
    cpu: str
    cores: int  # the cores this process may use (its affinity)
    flags: list[str] = field(default_factory=list)  # those of CPU_FLAGS the CPU has
    onnxruntime: str = ""
    providers: list[str] = field(default_factory=list)
    load: float | None = None  # the 1-minute load average when measured (None where the OS does not tell)
    # the share of all CPUs' time that other processes used while the timed passes ran (None: not measured)
    others: float | None = None

    def key(self, provider: str = "CPUExecutionProvider") -> str:
        """What a tuned setting is saved under: the CPU, its cores and flags, and the provider that runs."""
        return f"{self.cpu} | {self.cores} cores | {' '.join(self.flags) or 'no avx2'} | {provider}"

    def describe(self) -> str:
        flags = ", ".join(f.upper() for f in self.flags) or "none of AVX2/AVX-512/VNNI/AMX"
        load = f"; load average {self.load:.1f}" if self.load is not None else ""
        if self.others is not None:
            load += f"; other processes used {self.others:.0%} of the CPUs while it ran"
        return (f"{self.cpu}, {self.cores} core{'s' if self.cores != 1 else ''} ({flags}); onnxruntime "
                f"{self.onnxruntime} ({', '.join(self.providers)}){load}")

    def busy(self) -> bool:
        """Whether other work held the cores, so that speed figures mislead: other processes used more than
        BUSY_SHARE of the CPUs' time during the timed passes; where that was not measured, the load average
        above the cores (which counts the benchmark's own threads too)."""
        if self.others is not None:
            return self.others > BUSY_SHARE
        return self.load is not None and self.load > self.cores

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


BUSY_SHARE = 0.10


def _busy_seconds() -> float | None:
    """CPU seconds all processes used since boot (/proc/stat: user, nice, system, irq, softirq, steal); None
    where there is no /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class CpuWatch:
    """Measures, over a `with` block, the share of all CPUs' time that processes other than this one (and its
    children) used: how much the figures measured in the block were disturbed."""

    others: float | None = None

    def __enter__(self) -> CpuWatch:
        self._busy, self._own, self._wall = _busy_seconds(), _own_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy = _busy_seconds()
        wall = time.perf_counter() - self._wall
        if busy is None or self._busy is None or wall <= 0:
            return
        other = (busy - self._busy) - (_own_seconds() - self._own)
        self.others = min(1.0, max(0.0, other / (wall * (os.cpu_count() or 1))))


def cpu_info(cpuinfo: str | None = None) -> tuple[str, list[str]]:
    """The CPU's model name and which of CPU_FLAGS it has (from /proc/cpuinfo; elsewhere platform's name)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    name = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, flags=re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", cpuinfo, flags=re.M)
    have = set(flags.group(1).split()) if flags else set()
    cpu = name.group(1).strip() if name else (platform.processor() or platform.machine() or "unknown CPU")
    return re.sub(r"\s+", " ", cpu), [f for f in CPU_FLAGS if f in have]


def machine() -> Machine:
    import onnxruntime as ort

    from fasttag.infer import cpu_count

    cpu, flags = cpu_info()
    try:
        load: float | None = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this OS
        load = None
    return Machine(cpu=cpu, cores=cpu_count(), flags=flags, onnxruntime=ort.__version__,
                   providers=list(ort.get_available_providers()), load=load)
