"""The tested transformers range, the error that names it, and declared floors that CI actually installs."""

import re
from pathlib import Path

import pytest
import tomllib
import transformers
from transformers import AutoProcessor, PreTrainedModel
from transformers.processing_utils import ProcessorMixin

from uniperceiver_hf import UniPerceiverModel, UniPerceiverProcessor
from uniperceiver_hf import versions_uniperceiver as versions
from uniperceiver_hf.versions_uniperceiver import TESTED_TRANSFORMERS_FLOOR, is_tested_transformers


ROOT = Path(__file__).resolve().parents[1]


def _lower_bounds(requirements: list[str]) -> dict[str, str]:
    """{normalised name: lower bound} of the `name>=x` requirements (names normalised as pip does)."""
    bounds = {}
    for requirement in requirements:
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+)", requirement)
        if match:
            bounds[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return bounds


def _floor_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints" / "floor.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_tested_range_spans_the_floor_to_the_newest_tested_minor():
    assert versions.tested_transformers_range() == f">={TESTED_TRANSFORMERS_FLOOR},<5.26"
    assert is_tested_transformers(TESTED_TRANSFORMERS_FLOOR)
    assert is_tested_transformers("5.25.0") and is_tested_transformers("5.25.3")
    assert not is_tested_transformers("5.26.0")
    assert not is_tested_transformers("5.25.0rc1") and not is_tested_transformers("5.26.0.dev0")
    assert not is_tested_transformers("5.22.2") and not is_tested_transformers("6.0.0")


def test_the_installed_release_is_a_tested_one():
    """CI installs the newest release a fresh user gets and the floor: both must lie in the declared tested range,
    so a new upstream release shows up here first (then test it and move `TESTED_TRANSFORMERS_NEWEST_MINOR`)."""
    assert is_tested_transformers(), (transformers.__version__, versions.tested_transformers_range())


@pytest.fixture
def failing_loads(monkeypatch):
    """Processor and model loading that fail inside transformers, as an incompatible release would."""

    def fail(*args, **kwargs):
        raise ValueError("path requires `torchvision` to be installed.")

    monkeypatch.setattr(ProcessorMixin, "from_pretrained", classmethod(fail))
    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(fail))
    return monkeypatch


@pytest.mark.parametrize("load", [UniPerceiverProcessor.from_pretrained, UniPerceiverModel.from_pretrained])
def test_a_failure_on_an_untested_release_names_the_release_and_the_range(failing_loads, load, tmp_path):
    failing_loads.setattr(versions, "installed_transformers_version", lambda: "5.31.0")
    with pytest.raises(RuntimeError) as caught:
        load(tmp_path)
    message = str(caught.value)
    assert "transformers 5.31.0" in message and f"transformers>={TESTED_TRANSFORMERS_FLOOR},<5.26" in message
    assert "requires `torchvision`" in message and isinstance(caught.value.__cause__, ValueError)


def test_the_auto_class_route_reports_it_too(failing_loads, tmp_path):
    UniPerceiverProcessor().save_pretrained(tmp_path)
    failing_loads.setattr(versions, "installed_transformers_version", lambda: "6.0.0.dev0")
    with pytest.raises(RuntimeError, match=r"transformers 6\.0\.0\.dev0, which is outside the range"):
        AutoProcessor.from_pretrained(tmp_path)


def test_a_failure_on_a_tested_release_is_left_as_it_is(failing_loads, tmp_path):
    failing_loads.setattr(versions, "installed_transformers_version", lambda: TESTED_TRANSFORMERS_FLOOR)
    with pytest.raises(ValueError, match="requires `torchvision`"):
        UniPerceiverProcessor.from_pretrained(tmp_path)


def test_every_declared_floor_is_pinned_in_the_floor_constraints():
    """Each `>=` bound of the dependencies and extras is exactly what the CI floor run installs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _lower_bounds(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared.update(_lower_bounds(extra))
    pins = _floor_pins()
    assert {name: pins.get(name) for name in declared} == declared
    assert declared["transformers"] == TESTED_TRANSFORMERS_FLOOR
    assert tuple(int(part) for part in declared["torch"].split(".")[:2]) >= (2, 6)  # CVE-2025-32434


def test_every_torch_load_in_the_code_is_weights_only():
    calls = []
    for folder in ("src", "examples", "benchmarks", "spaces_demo", "scripts", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            calls += [line for line in path.read_text().splitlines() if re.search(r"\btorch\.load\(", line)]
    assert calls and all("weights_only=True" in call for call in calls), calls
