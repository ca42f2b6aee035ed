"""The embedded default model ships inside the wheel and is found from an installed package."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not (ROOT / "export" / "default" / "model.onnx").exists():
        pytest.skip("export/default/model.onnx is not in this checkout")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True)
    return next(out.glob("fasttag-*.whl"))


def test_wheel_holds_the_default_model(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("model.onnx", "tokenizer.json", "config.json", "fasttag.json", "README.md"):
        assert f"fasttag/default_model/{f}" in names


def test_installed_wheel_finds_and_runs_the_default_model(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)], check=True,
                   capture_output=True)
    code = (
        "import fasttag, fasttag.model as m; d = m.default_model_dir(); print(d);"
        "assert 'site-packages' in str(d), d;"
        "from fasttag import Tagger; print(Tagger.load().tag(['Ada Lovelace lived in London.']))"
    )
    res = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "site-packages" in res.stdout and "label='LOC'" in res.stdout


def test_python_dash_m_runs_the_same_command_line():
    out = subprocess.run([sys.executable, "-m", "fasttag", "--version"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("fasttag")
    bad = subprocess.run([sys.executable, "-m", "fasttag", "no-such-command"], capture_output=True, text=True)
    assert bad.returncode == 2 and "No such command" in bad.stderr
