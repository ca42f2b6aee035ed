import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

from lanes import LANES, missing, skip_or_fail  # noqa: E402
from tiny_models import FAMILIES, TINY_BERT, build_checkpoint  # noqa: E402

# Property tests (hypothesis) draw new examples on a developer's machine, so that a case nobody wrote down can turn
# up (its failing example is printed and kept in .hypothesis/); in CI they draw the same examples every run, so that
# a commit that passed once passes again.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Tiny models are built once per session; FASTTAG_TEST_CACHE keeps them across sessions while developing.
_CACHE = os.environ.get("FASTTAG_TEST_CACHE")

# Fixtures that build torch checkpoints or export them with optimum: a test using one is in the `torch` lane.
TORCH_FIXTURES = {"checkpoint_factory", "export_factory", "family"}
# Other fixtures that put a test in a lane.
FIXTURE_LANES = {"ray_cluster": "ray", "s3": "s3"}


def pytest_collection_modifyitems(config, items):
    """Mark tests by the fixtures they use, and make every test of a lane (torch, ray, ...) also `slow`."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & TORCH_FIXTURES:
            item.add_marker(pytest.mark.torch)
        for fixture, lane in FIXTURE_LANES.items():
            if fixture in fixtures:
                item.add_marker(lane)
        if any(item.get_closest_marker(lane) for lane in LANES):
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item):
    # before the item's fixtures are built: a missing need skips here (fails in CI) instead of erring in a fixture
    for lane in LANES:
        if item.get_closest_marker(lane) and (reason := missing(lane)):
            skip_or_fail(reason)


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
        checkpoint = _checkpoint(tmp_path_factory, family)
        export(str(checkpoint), path, precision=precision, overwrite=True, log=lambda m: None)
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_user_folders(tmp_path_factory):
    """fasttag's export cache (FASTTAG_CACHE: checkpoints and hub ids given to --model) and the tuned settings of
    `fasttag bench --tune` (FASTTAG_CONFIG_DIR) in temporary folders: a test never reads or writes the user's."""
    base = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTTAG_CACHE", str(base / "fasttag-cache"))
        mp.setenv("FASTTAG_CONFIG_DIR", str(base / "fasttag-config"))
        yield


@pytest.fixture()
def cache_root(tmp_path, monkeypatch):
    """A fresh, empty export cache for one test (FASTTAG_CACHE), for tests that count or race its entries."""
    root = tmp_path / "fasttag-cache"
    monkeypatch.setenv("FASTTAG_CACHE", str(root))
    return root


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
def bert_export() -> Path:
    """The committed export of the tiny bert checkpoint (tests/fixtures/tiny-bert): needs no torch.

    tests/make_fixtures.py rebuilds it; tests/test_fixtures.py checks that it is still what export_factory("bert")
    builds. Tests copy it before changing it.
    """
    return TINY_BERT
