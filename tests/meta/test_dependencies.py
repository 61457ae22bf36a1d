"""pyproject.toml declares what the code imports, and nothing it does not."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

from modelops_bundle.core.pyproject_deps import normalise, parse

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "modelops_bundle"
PROJECT = parse((ROOT / "pyproject.toml").read_bytes(), "pyproject.toml")["project"]
#: Extras a user installs for a feature (``test`` is the development environment: not judged here).
FEATURE_EXTRAS = ("azure", "s3", "gcs", "dask", "starsim", "typer", "testing")
SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")


def third_party_imports() -> dict[str, set[str]]:
    """``{top-level module: {files}}`` of every import in the package (templates are user projects)."""
    found: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        if "templates" in path.relative_to(SOURCE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".", 1)[0]
                if top not in sys.stdlib_module_names and top not in ("modelops_bundle", "__future__"):
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def distribution(module: str) -> str:
    providers = packages_distributions().get(module)
    return normalise(providers[0]) if providers else normalise(module)


def names(requirements: list[str]) -> set[str]:
    return {normalise(Requirement(text).name) for text in requirements}


def test_every_import_is_declared() -> None:
    base = names(PROJECT["dependencies"])
    extras = {extra: names(PROJECT["optional-dependencies"][extra]) for extra in FEATURE_EXTRAS}
    declared = base.union(*extras.values())
    undeclared = {
        module: files for module, files in third_party_imports().items() if distribution(module) not in declared
    }
    assert undeclared == {}, f"imported but not declared (base or {FEATURE_EXTRAS}): {undeclared}"


def test_every_base_dependency_is_imported() -> None:
    imported = {distribution(module) for module in third_party_imports()}
    unused = names(PROJECT["dependencies"]) - imported
    assert unused == set(), f"declared but never imported: {unused}"
    # oras-py is an independent client the tests compare against, not ours (docs/decisions/0025)
    assert "oras" not in names(PROJECT["dependencies"]) and "oras" in names(PROJECT["optional-dependencies"]["test"])


def test_no_dependency_marker_is_dead() -> None:
    """A marker no supported Python satisfies (``python_version < '3.10'`` with ``requires-python >= 3.10``)
    declares nothing."""
    assert PROJECT["requires-python"] == ">=3.10"
    everything = [*PROJECT["dependencies"], *(r for extra in PROJECT["optional-dependencies"].values() for r in extra)]
    for text in everything:
        marker = Requirement(text).marker
        if marker is None:
            continue
        alive = [version for version in SUPPORTED_PYTHONS if Marker(str(marker)).evaluate({"python_version": version})]
        assert alive, f"{text!r} applies to no supported Python"


def test_the_all_extra_is_every_provider_and_dask() -> None:
    (all_of,) = PROJECT["optional-dependencies"]["all"]
    requirement = Requirement(all_of)
    assert normalise(requirement.name) == "modelops-bundle"
    assert requirement.extras == {"azure", "s3", "gcs", "dask"}
