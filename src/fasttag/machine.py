"""The machine a benchmark or a tuned setting belongs to: CPU model, cores, the instruction sets that matter."""

from __future__ import annotations

import os
import platform
import re
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

    def key(self, provider: str = "CPUExecutionProvider") -> str:
        """What a tuned setting is saved under: the CPU, its cores and flags, and the provider that runs."""
        return f"{self.cpu} | {self.cores} cores | {' '.join(self.flags) or 'no avx2'} | {provider}"

    def describe(self) -> str:
        flags = ", ".join(f.upper() for f in self.flags) or "none of AVX2/AVX-512/VNNI/AMX"
        load = f"; load average {self.load:.1f}" if self.load is not None else ""
        return (f"{self.cpu}, {self.cores} core{'s' if self.cores != 1 else ''} ({flags}); onnxruntime "
                f"{self.onnxruntime} ({', '.join(self.providers)}){load}")

    def busy(self) -> bool:
        """Whether other work held the cores (load average above the cores): speed figures then mislead."""
        return self.load is not None and self.load > self.cores

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
