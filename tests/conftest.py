import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import FAMILIES, build_checkpoint  # noqa: E402

# Tiny models are built once per session; FASTTAG_TEST_CACHE keeps them across sessions while developing.
_CACHE = os.environ.get("FASTTAG_TEST_CACHE")


def _cache_root(tmp_path_factory) -> Path:
    if _CACHE:
        root = Path(_CACHE)
        root.mkdir(parents=True, exist_ok=True)
        return root
    return tmp_path_factory.getbasetemp() / "tiny-models"


def _checkpoint(tmp_path_factory, family: str) -> Path:
    path = _cache_root(tmp_path_factory) / f"{family}-ckpt"
    if not (path / "config.json").exists():
        build_checkpoint(family, path)
    return path


def _export(tmp_path_factory, family: str, precision: str = "fp32") -> Path:
    from fasttag.export import export

    path = _cache_root(tmp_path_factory) / f"{family}-{precision}"
    if not (path / "fasttag.json").exists():
        export(str(_checkpoint(tmp_path_factory, family)), path, precision=precision, overwrite=True, log=lambda m: None)
    return path


@pytest.fixture(scope="session", params=FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def checkpoint_factory(tmp_path_factory):
    return lambda family: _checkpoint(tmp_path_factory, family)


@pytest.fixture(scope="session")
def export_factory(tmp_path_factory):
    return lambda family, precision="fp32": _export(tmp_path_factory, family, precision)


@pytest.fixture(scope="session")
def bert_export(export_factory) -> Path:
    return export_factory("bert")
