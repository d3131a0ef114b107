"""The installs are locked (issue 14): every dependency pyproject.toml names is pinned with hashes in the lock
that `make install` uses, at a version pyproject.toml admits, and the contract service imports cleanly with
warnings as errors at those versions (the cryptography 51 DSA deprecation broke a fresh clone once)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _pins(lock: Path) -> dict[str, tuple[str, int]]:
    """``{name: (version, number of hashes)}`` of one uv/pip-compile lock file."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in lock.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)", line):
            current = canonicalize_name(m.group(1))
            pins[current] = (m.group(3), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, n = pins[current]
            pins[current] = (version, n + 1)
        elif line and not line.startswith(" "):
            current = None
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in [*project["dependencies"], *extras["test"], *extras["dev"]]]


@pytest.mark.parametrize("requirement", _requirements(), ids=str)
def test_every_dependency_is_locked_with_hashes_at_an_admitted_version(requirement: Requirement) -> None:
    pins = _pins(ROOT / "requirements.lock")
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
    version, hashes = pins[name]
    assert hashes >= 1, f"{name}=={version} has no --hash in requirements.lock"
    assert requirement.specifier.contains(version, prereleases=True), (
        f"requirements.lock pins {name}=={version}, which pyproject.toml's {requirement} refuses: run `make lock`")


def test_build_tools_and_the_no_deps_install_are_locked_too() -> None:
    build = _pins(ROOT / "requirements-build.lock")
    assert {"pip", "setuptools", "wheel"} <= build.keys()
    assert all(n >= 1 for _, n in build.values())
    # the build tools are the very versions the project lock resolved (setuptools<82 for pkg_resources)
    assert build["setuptools"][0] == _pins(ROOT / "requirements.lock")["setuptools"][0]
    nodeps = _pins(ROOT / "requirements-nodeps.lock")
    assert nodeps == {"face-recognition": (nodeps["face-recognition"][0], 2),
                      "rapidocr-onnxruntime": (nodeps["rapidocr-onnxruntime"][0], 1)}


def test_rapidocr_s_dependencies_are_locked_with_the_headless_opencv() -> None:
    """rapidocr-onnxruntime is installed --no-deps (it asks for opencv-python, which needs libGL, missing on a
    headless server): every other requirement of it is in the project lock, and OpenCV is the headless build."""
    from importlib.metadata import requires

    pins = _pins(ROOT / "requirements.lock")
    for line in requires("rapidocr-onnxruntime") or []:
        name = canonicalize_name(Requirement(line).name)
        wanted = canonicalize_name("opencv-python-headless") if name == "opencv-python" else name
        assert wanted in pins, f"{wanted} (for rapidocr-onnxruntime) is not in requirements.lock"
    assert "opencv-python" not in pins
    done = subprocess.run([sys.executable, "-c", "import cv2, rapidocr_onnxruntime"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_makefile_installs_only_from_the_locks_with_hashes_required() -> None:
    recipe = (ROOT / "Makefile").read_text().split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    installs = [line.strip() for line in recipe.splitlines() if line.strip().startswith("$(PIP) install")]
    assert installs, recipe
    for line in installs:
        assert "--require-hashes" in line or ("--no-deps" in line and line.endswith("-e .")), line


def test_the_services_import_their_libraries_with_warnings_as_errors() -> None:
    """Outside pytest's filters: the code's own narrow filters keep pyHanko's DSA import and
    face_recognition_models' pkg_resources import quiet (either would otherwise fail or quit the process)."""
    code = "import contract.signing, contract.app, pyhanko.sign.validation, kyc.faces; kyc.faces.api()"
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
