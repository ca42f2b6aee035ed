"""What each test lane needs, and what a missing need does: a skip on a developer's machine, a failure in CI.

The lanes are the markers registered in pyproject.toml. tests/conftest.py marks tests by the fixtures they
use and checks each marked test's needs here before its fixtures are built. CI (`CI` set, as .ci/run runs)
installs everything, so there a missing need fails the test instead of hiding it behind a skip.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil

import pytest

# every test carrying one of these is also `slow`: the fast lane (-m "not slow") leaves it out
LANES = ("torch", "ray", "s3", "browser", "packaging")

# the modules a lane imports, and how to install them
MODULES = {
    "torch": (("torch", "transformers", "optimum"), "pip install torch==2.13.0 && pip install -e '.[train,test]'"),
    "ray": (("ray",), "pip install -e '.[test]'"),
    "s3": (("moto", "flask"), "pip install -e '.[test]'"),  # moto's server mode (moto[server]) runs on flask
    "packaging": (("setuptools", "wheel"), "pip install -e '.[test]'"),
}


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def chromium() -> str | None:
    """The headless browser the `browser` lane drives, if one is on PATH."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@functools.cache
def missing(lane: str) -> str | None:
    """Why a test of `lane` cannot run here, or None when it can."""
    if lane == "browser":
        return None if chromium() else "chromium is not installed (apt-get install chromium)"
    names, fix = MODULES.get(lane, ((), ""))
    absent = [name for name in names if importlib.util.find_spec(name) is None]
    if not absent:
        return None
    return f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed ({fix})"


def skip_or_fail(reason: str) -> None:
    """Skip a test whose need is missing; in CI, which installs every need, fail it instead."""
    if in_ci():
        pytest.fail(f"{reason}: CI installs every test's needs (.ci/run), so this is a failure, not a skip",
                    pytrace=False)
    pytest.skip(reason)
