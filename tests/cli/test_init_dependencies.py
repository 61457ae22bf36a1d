"""``pyproject.toml`` against what the models import: ``init`` offers the missing entries, ``init
--add-dependencies`` writes them keeping the rest of the file, ``push`` warns."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_bundle.core import pyproject_deps
from modelops_bundle.core.errors import ConfigError, UsageError
from modelops_bundle.testing import BundleProject, CliRunner

USER_PYPROJECT = """\
# my project -- keep this comment
[project]
name = "mine"
version = "0.1"
dependencies = [
  "numpy>=1.26",  # arrays
]

[tool.mine]
setting = "kept"
"""


def test_init_over_an_existing_pyproject_offers_what_the_template_imports(run_cli: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "sir"
    folder.mkdir()
    (folder / "pyproject.toml").write_text(USER_PYPROJECT)
    result = run_cli("init", str(folder), "--template", "starsim")
    assert result.exit_code == 0, result
    assert "kept existing pyproject.toml" in result.stdout
    assert "warning: pyproject.toml does not declare 'starsim>=3.0.2,<4', which models/sir.py imports" in result.stderr
    assert "warning: pyproject.toml does not declare 'pandas', which models/sir.py imports" in result.stderr
    assert "or register the models and run 'mops bundle init --add-dependencies'" in result.stdout
    assert (folder / "pyproject.toml").read_text() == USER_PYPROJECT  # offered, not written


def test_init_add_dependencies_writes_them_and_keeps_the_rest(run_cli: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "sir"
    folder.mkdir()
    (folder / "pyproject.toml").write_text(USER_PYPROJECT)
    result = run_cli("init", str(folder), "--template", "starsim", "--add-dependencies", "--json")
    assert result.exit_code == 0, result
    dependencies = result.json()["dependencies"]
    assert dependencies["written"] is True
    assert [item["requirement"] for item in dependencies["missing"]] == ["pandas", "starsim>=3.0.2,<4"]
    assert (folder / "pyproject.toml").read_text() == USER_PYPROJECT.replace(
        '  "numpy>=1.26",  # arrays\n', '  "numpy>=1.26",  # arrays\n  "pandas",\n  "starsim>=3.0.2,<4",\n'
    )


def test_init_that_writes_pyproject_itself_has_nothing_to_say(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("init", str(tmp_path / "fresh"), "--template", "starsim", "--json")
    assert result.exit_code == 0 and result.json()["dependencies"] is None
    assert "does not declare" not in result.stderr


def test_an_existing_project_gets_its_registered_models_dependencies(bundle_project: BundleProject) -> None:
    bundle_project.write(
        "models/sim.py",
        "import numpy as np\nimport yaml\n\ntry:\n    import polars\nexcept ImportError:\n    polars = None\n\n"
        "from models import helpers\n\n\nclass Sim:\n    def simulate(self, params, seed):\n"
        "        import scipy\n        return {}\n",
    )
    bundle_project.write("models/helpers.py", "import starsim as ss\n")
    bundle_project.write("models/__init__.py", "")
    assert bundle_project.run("register-model", "models/sim.py", "--class", "Sim").ok
    assert bundle_project.run("add", ".").ok

    pushed = bundle_project.run("push", "--dry-run")
    assert pushed.exit_code == 0, pushed  # a warning, never a refusal
    warned = [line for line in pushed.stderr.splitlines() if "does not declare" in line]
    assert len(warned) == 3  # numpy, pyyaml (yaml), starsim; not the optional polars nor the lazy scipy
    # ``yaml`` is PyYAML's module: named after the installed distribution (or the well-known name)
    assert any("'pyyaml', which models/sim.py imports" in line.lower() for line in warned)
    assert any("'starsim', which models/helpers.py imports" in line for line in warned)

    before = bundle_project.read("pyproject.toml")
    again = bundle_project.run("init")  # plain init on a project: refused as ever, nothing touched
    assert again.exit_code == 2 and bundle_project.read("pyproject.toml") == before
    added = bundle_project.run("init", "--add-dependencies")
    assert added.exit_code == 0, added
    assert "added to pyproject.toml: numpy, starsim, pyyaml" in added.stdout.lower()
    document = pyproject_deps.parse(bundle_project.path("pyproject.toml").read_bytes(), "pyproject.toml")
    assert [name.lower() for name in document["project"]["dependencies"]] == ["numpy", "starsim", "pyyaml"]
    assert "does not declare" not in bundle_project.run("push", "--dry-run").stderr
    done = bundle_project.run("init", "--add-dependencies")
    assert "declares every dependency" in done.stdout


def test_a_broken_pyproject_is_named(bundle_project: BundleProject) -> None:
    bundle_project.write("models/sim.py", "import numpy\n\n\nclass Sim:\n    pass\n")
    assert bundle_project.run("register-model", "models/sim.py", "--class", "Sim").ok
    bundle_project.write("pyproject.toml", "[project\nname = 1\n")
    result = bundle_project.run("init", "--add-dependencies")
    assert result.exit_code == 2 and "pyproject.toml: invalid TOML" in result.stderr
    assert "pyproject.toml: invalid TOML" in bundle_project.run("push", "--dry-run").stderr  # a warning there


# ---------------------------------------------------------------------------------- the TOML edit


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('[project]\nname = "x"\ndependencies = ["a"]\n', '[project]\nname = "x"\ndependencies = ["a", "b>=1"]\n'),
        (
            '[project]\ndependencies = []\n[tool.x]\nv = "]"\n',
            '[project]\ndependencies = ["b>=1"]\n[tool.x]\nv = "]"\n',
        ),
        (
            '[project]\ndependencies = [\n    "a",  # why, "#"\n    "c"  # last\n]\n',
            '[project]\ndependencies = [\n    "a",  # why, "#"\n    "c",  # last\n    "b>=1",\n]\n',
        ),
        (
            '[project]\nname = "x"\n\n[project.optional-dependencies]\nt = ["a"]\n',
            '[project]\nname = "x"\ndependencies = ["b>=1"]\n\n[project.optional-dependencies]\nt = ["a"]\n',
        ),
        ('[project]\nname = "x"', '[project]\nname = "x"\ndependencies = ["b>=1"]'),
    ],
)
def test_adding_keeps_every_other_byte(tmp_path: Path, before: str, after: str) -> None:
    (tmp_path / "pyproject.toml").write_text(before)
    assert pyproject_deps.add(tmp_path, ["b>=1"]) is True
    assert (tmp_path / "pyproject.toml").read_text() == after
    assert pyproject_deps.add(tmp_path, ["B>=2"]) is False  # already declared (names compare normalised)


def test_what_cannot_be_added_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.poetry.dependencies]\npython = "^3.10"\nnumpy = "*"\n')
    with pytest.raises(UsageError, match="no \\[project\\] table"):
        pyproject_deps.add(tmp_path, ["b"])
    assert pyproject_deps.declared(pyproject_deps.load(tmp_path) or {}) == {"numpy"}
    dotted = 'project.name = "x"\nproject.dependencies = ["a"]\n'
    path.write_text(dotted)
    with pytest.raises(UsageError):
        pyproject_deps.add(tmp_path, ["b"])
    assert path.read_text() == dotted
    path.write_text("[project\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        pyproject_deps.load(tmp_path)


def test_dynamic_dependencies_are_not_judged(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndynamic = ["dependencies"]\n')
    (tmp_path / "m.py").write_text("import numpy\n")
    assert pyproject_deps.missing(tmp_path, ["m.py"]) == []
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert [item.requirement for item in pyproject_deps.missing(tmp_path, ["m.py"])] == ["numpy"]
