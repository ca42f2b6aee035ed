"""The embedded default model ships inside the wheel and is found from an installed package."""

import email
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import fasttag

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not (ROOT / "export" / "default" / "model.onnx").exists():
        pytest.skip("export/default/model.onnx is not in this checkout")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True)
    return next(out.glob("fasttag-*.whl"))


def _site_dirs() -> list[str]:
    """The running environment's site-packages (a virtualenv's own, not its base interpreter's)."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


def _venv_with_the_wheel(wheel: Path, venv: Path) -> Path:
    """A fresh venv holding the wheel, whose dependencies come from the running environment.

    `--system-site-packages` would chain to the base interpreter's packages, which a virtualenv's
    (the README's test command run in one) are not: a .pth file in the new venv's site-packages names
    the running environment's site-packages instead, after its own, so the installed wheel wins over
    any other fasttag there (an editable install of the source tree included).
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", purelib,
                    str(wheel)], check=True, capture_output=True)
    (Path(purelib) / "_fasttag_test_parent_env.pth").write_text("".join(f"{d}\n" for d in _site_dirs()))
    return py


@pytest.mark.packaging
def test_wheel_holds_the_default_model(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("model.onnx", "tokenizer.json", "config.json", "fasttag.json", "README.md"):
        assert f"fasttag/default_model/{f}" in names


@pytest.mark.packaging
def test_wheel_version_is_fasttag_version(wheel):
    with zipfile.ZipFile(wheel) as zf:
        metadata = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        version = email.message_from_bytes(zf.read(metadata))["Version"]
    assert version == fasttag.__version__
    assert wheel.name.startswith(f"fasttag-{fasttag.__version__}-")


@pytest.mark.packaging
def test_installed_wheel_finds_and_runs_the_default_model(wheel, tmp_path):
    py = _venv_with_the_wheel(wheel, tmp_path / "venv")
    code = (
        "import fasttag, fasttag.model as m; d = m.default_model_dir(); print(d);"
        "assert 'site-packages' in str(d), d;"
        "from fasttag import Tagger; print(Tagger.load().tag(['Ada Lovelace lived in London.']))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    res = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert "site-packages" in res.stdout and "label='LOC'" in res.stdout
    assert str(tmp_path / "venv") in res.stdout  # the wheel's copy, not the source tree's export/default


def test_python_dash_m_runs_the_same_command_line():
    out = subprocess.run([sys.executable, "-m", "fasttag", "--version"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("fasttag") and fasttag.__version__ in out.stdout
    bad = subprocess.run([sys.executable, "-m", "fasttag", "no-such-command"], capture_output=True, text=True)
    assert bad.returncode == 2 and "No such command" in bad.stderr
