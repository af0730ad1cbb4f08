"""The two deployables as built by pip from packaging/*: contents, declared dependencies, and their locks."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.loopback import REPO

AGENT_DEPENDENCIES = {"flask", "waitress", "onnxruntime", "opencv-python-headless", "numpy"}
TRAINING = ("torch", "torchvision", "lightning", "pytorch-lightning", "hydra-core", "albumentations", "torchmetrics")
BOARD = {"python_version": "3.10", "python_full_version": "3.10.12", "platform_machine": "aarch64"}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    """distribution name -> the wheel pip builds from packaging/agent and packaging/trainer."""
    out = tmp_path_factory.mktemp("wheels")
    projects = [str(REPO / "packaging/agent"), str(REPO / "packaging/trainer")]
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(out), *projects]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert built.returncode == 0, built.stderr
    return {canonicalize_name(path.name.split("-")[0]): path for path in out.glob("*.whl")}


def members(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def top_level(wheel: Path) -> set[str]:
    """The wheel's top-level folders, its .dist-info left out."""
    return {name.split("/")[0] for name in members(wheel)} - {"-".join(wheel.name.split("-")[:2]) + ".dist-info"}


def requires(wheel: Path) -> list[Requirement]:
    """The wheel's Requires-Dist."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(archive.read(name).decode())
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]


def sources(package: str, pattern: str) -> set[str]:
    """Files of ``package`` in the checkout that match ``pattern``, as wheel member names."""
    root = REPO / package
    return {f"{package}/{p.relative_to(root)}" for p in root.rglob(pattern) if "__pycache__" not in p.parts}


def lock_pins(lock: Path, environment: dict[str, str]) -> dict[str, str]:
    """name -> pinned version of the lock lines whose marker holds in ``environment``."""
    pins = {}
    for line in lock.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                pins[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return pins


def test_agent_wheel_declares_the_board_runtime_only(wheels) -> None:
    declared = requires(wheels["rdk-weld-agent"])
    assert {canonicalize_name(r.name) for r in declared} == AGENT_DEPENDENCIES
    assert not {canonicalize_name(r.name) for r in declared} & set(TRAINING)


def test_agent_wheel_holds_the_agent_the_schema_and_the_page(wheels) -> None:
    names = members(wheels["rdk-weld-agent"])
    assert top_level(wheels["rdk-weld-agent"]) == {"rdk_agent", "shared_schema"}
    expected = sources("rdk_agent", "*.py") | sources("shared_schema", "*.py")
    expected |= sources("rdk_agent", "web/static/*") | sources("rdk_agent", "web/templates/*")
    assert {"rdk_agent/web/templates/index.html", "rdk_agent/web/static/app.js"} <= expected
    assert expected <= names, sorted(expected - names)
    assert not [name for name in names if name.endswith(".pyc") or "/tests/" in name]


def test_trainer_wheel_holds_the_trainer_its_configs_and_the_schema(wheels) -> None:
    wheel = wheels["rdk-weld-trainer"]
    names = members(wheel)
    assert top_level(wheel) == {"desktop_trainer", "shared_schema"}
    configs = sources("desktop_trainer", "configs/**/*.yaml")
    assert "desktop_trainer/configs/train.yaml" in configs
    assert configs | sources("desktop_trainer", "*.py") | sources("shared_schema", "*.py") <= names
    declared = {canonicalize_name(r.name) for r in requires(wheel)}
    assert {"torch", "torchvision", "lightning", "hydra-core", "onnxruntime"} <= declared
    assert not declared & {"flask", "waitress"}


@pytest.mark.parametrize(
    ("distribution", "lock"), [("rdk-weld-agent", "agent.txt"), ("rdk-weld-trainer", "trainer.txt")]
)
def test_locks_pin_every_declared_dependency(wheels, distribution, lock) -> None:
    """requirements/*.txt (make lock) must follow packaging/*/pyproject.toml, on the board's Python and here."""
    for environment in ({**default_environment(), **BOARD}, default_environment()):
        pins = lock_pins(REPO / "requirements" / lock, environment)
        for requirement in requires(wheels[distribution]):
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{lock} pins no {name} for Python {environment['python_full_version']}; make lock"
            assert requirement.specifier.contains(pins[name], prereleases=True), f"{lock}: {name}=={pins[name]}"


def test_board_lock_has_no_training_package_and_the_trainer_lock_keeps_torch() -> None:
    agent = lock_pins(REPO / "requirements/agent.txt", {**default_environment(), **BOARD})
    assert not set(agent) & set(TRAINING)
    trainer = lock_pins(REPO / "requirements/trainer.txt", default_environment())
    assert (trainer["torch"], trainer["torchvision"]) == ("2.14.1", "0.29.1")
