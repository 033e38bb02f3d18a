"""flowloom as a package: the wheel built from this tree, installed with its runtime
dependencies (at the versions of ``requirements.lock``) into a fresh virtual environment,
gives a working ``flowloom serve`` (API, web UI, example workflows) and ``flowloom run``, and
what it installs stays under 300 MB.

Slow (about half a minute: the dependencies are installed for real, from the package
registry, as a user's ``pip install`` would).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import httpx
import pytest
from servekit import serve, sign_in

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
INSTALLED_LIMIT_MB = 300
"""What flowloom and its runtime dependencies may take on disk (pip itself not counted)."""


def _constraints(lockfile: Path, into: Path) -> Path:
    """The lockfile's pins without their hashes: constraints for resolving only the runtime
    dependencies (the lockfile also pins the development tools)."""
    pins = []
    for line in lockfile.read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.\-]+==[^\s\\;]+)(\s*;[^\\]*)?", line)
        if found:
            pins.append(found.group(1) + (found.group(2) or "").rstrip())
    into.write_text("\n".join(pins) + "\n")
    return into


def _run(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _size_mb(folder: Path, skip: tuple[str, ...]) -> float:
    total = 0
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if path.is_file() and not path.is_symlink() and not parts[0].startswith(skip):
            total += path.stat().st_size
    return total / 2**20


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; its bin directory."""
    if not (ROOT / "flowloom" / "webui" / "static" / "index.html").is_file():
        pytest.fail("the web UI is not built (make install builds it)")
    root = tmp_path_factory.mktemp("wheel")
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", root / "dist", ROOT,
    )  # fmt: skip
    [wheel] = (root / "dist").glob("flowloom-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "flowloom/webui/static/index.html" in names
    assert "flowloom/examples/hello_template.json" in names
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    constraints = _constraints(ROOT / "requirements.lock", root / "constraints.txt")
    _run(bin_dir / "python", "-m", "pip", "install", "--quiet", wheel, "-c", constraints)
    return bin_dir


def test_the_installed_package_stays_lean(installed: Path) -> None:
    [site] = (installed.parent / "lib").glob("python3*/site-packages")
    size_mb = _size_mb(site, skip=("pip", "setuptools", "_distutils_hack"))
    print(f"installed: {size_mb:.0f} MB")
    assert size_mb <= INSTALLED_LIMIT_MB


def test_flowloom_run_works_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    flow = ROOT / "examples" / "hello_template.json"
    env = {"FLOWLOOM_DATA_DIR": str(tmp_path / "data")}
    done = _run(
        installed / "flowloom", "run", flow, "-i", "name=Ada", "--json", cwd=tmp_path, env=env
    )
    assert '"COMPLETED"' in done.stdout
    assert "Ada" in done.stdout


def test_flowloom_serve_works_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    env = {"PATH": f"{installed}{os.pathsep}{os.environ.get('PATH', '')}"}
    with serve(
        tmp_path / "data", log, env, command=[str(installed / "flowloom"), "serve"], cwd=tmp_path
    ) as (_process, base):
        page = httpx.get(f"{base}/", timeout=10)
        assert page.status_code == 200
        assert '<div id="root">' in page.text
        headers = sign_in(base, log)
        listed = httpx.get(f"{base}/api/v1/workflows", headers=headers, timeout=10)
        assert listed.status_code == 200, listed.text
        names = {w["name"] for w in listed.json()["items"]}
        assert len(names) >= 5, names  # the example workflows, from inside the wheel
