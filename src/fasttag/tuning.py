"""Batch settings `fasttag bench --tune` found fastest, saved per machine and model architecture.

They live in one JSON file, `tuned.json`, in the user's config folder (click's `get_app_dir("fasttag")`,
e.g. ~/.config/fasttag on Linux; FASTTAG_CONFIG_DIR replaces it), keyed by the machine (`Machine.key`)
and then by the model's architecture (`architecture_key`): a setting is only used where it was measured.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fasttag.errors import UsageError

TUNED_FILE = "tuned.json"
TUNED_FIELDS = ("batch_tokens", "max_batch_size", "streams", "threads")  # the options a tuned setting gives


@dataclass(frozen=True)
class BatchSetting:
    """One point of the sweep: the options it sets (see `EngineOptions`)."""

    batch_tokens: int
    max_batch_size: int
    streams: int
    threads: int

    def describe(self) -> str:
        return (f"--batch-tokens {self.batch_tokens}, {self.max_batch_size} rows per batch at most, "
                f"--streams {self.streams}, --threads {self.threads}")


def config_dir() -> Path:
    env = os.environ.get("FASTTAG_CONFIG_DIR", "").strip()
    if env:
        return Path(env)
    import click

    return Path(click.get_app_dir("fasttag"))


def tuned_path() -> Path:
    return config_dir() / TUNED_FILE


def architecture_key(bundle: Any) -> str:
    """The model's architecture as speed sees it: family, layers, width, window and precision (not its weights)."""
    config_path = bundle.path / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    except (OSError, ValueError):
        config = {}
    return (f"{config.get('model_type', 'unknown')}-L{config.get('num_hidden_layers', '?')}"
            f"-H{config.get('hidden_size', '?')}-{bundle.precision}")


def _read_all(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the tuned settings {path}: {exc}; delete it, run 'fasttag bench --tune' "
                         "again, or pass --ignore-tuned") from exc
    return data if isinstance(data, dict) else {}


def load_tuned(machine_key: str, arch_key: str) -> tuple[BatchSetting, dict] | None:
    """The setting saved for this machine and architecture and its record (measured speeds), or None."""
    path = tuned_path()
    record = _read_all(path).get(machine_key, {}).get(arch_key)
    if not isinstance(record, dict):
        return None
    try:
        setting = BatchSetting(**{k: int(record["setting"][k]) for k in TUNED_FIELDS})
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"the tuned settings in {path} for {arch_key} are incomplete; delete the file or run "
                         "'fasttag bench --tune' again") from exc
    return setting, record


def save_tuned(machine_key: str, arch_key: str, setting: BatchSetting, record: dict) -> Path:
    """Save `setting` (with `record`: what was measured) for this machine and architecture; written atomically."""
    path = tuned_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read_all(path)
    data.setdefault(machine_key, {})[arch_key] = {"setting": asdict(setting), **record}
    fd, tmp = tempfile.mkstemp(prefix=".tuned-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)
    return path
