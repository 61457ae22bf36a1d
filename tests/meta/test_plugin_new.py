"""``plugin new``: what it writes, its errors, and that what it writes is lint- and type-clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelops_bundle.core.errors import BundleError
from modelops_bundle.core.plugin_scaffold import KINDS, create_plugin, render_plugin
from modelops_bundle.testing import CliRunner

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("kind", KINDS)
def test_renders_a_complete_package(kind: str) -> None:
    files = render_plugin("lab-x", kind)
    assert {
        "pyproject.toml",
        "README.md",
        ".gitignore",
        "src/mops_lab_x/__init__.py",
        "src/mops_lab_x/plugin.py",
        "src/mops_lab_x/py.typed",
        "tests/test_plugin.py",
        "tests/test_plugin_metadata.py",
    } == set(files)
    for rel, content in files.items():
        text = content.decode("utf-8")
        assert "{{" not in text and "__package__" not in rel, f"{rel}: placeholder left"
    pyproject = files["pyproject.toml"].decode()
    assert '[project.entry-points.modelops_bundle]\nlab-x = "mops_lab_x.plugin"' in pyproject
    assert 'name = "mops-lab-x"' in pyproject and "modelops-bundle>=" in pyproject
    assert "modelops_bundle.testing" in pyproject
    tests = files["tests/test_plugin.py"].decode()
    assert "bundle_project" in tests
    if kind == "storage":
        assert "StorageProviderConformance" in tests


def test_creates_the_package_and_reports_it(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("plugin", "new", "labstore", "--kind", "storage", "--json", cwd=tmp_path)
    assert result.exit_code == 0, result
    payload = result.json()
    assert payload == {
        "name": "labstore",
        "kind": "storage",
        "distribution": "mops-labstore",
        "package": "mops_labstore",
        "entry_point": "labstore = mops_labstore.plugin",
        "hooks": ["mops_storage_providers"],
        "path": str(tmp_path / "mops-labstore"),
        "files": payload["files"],
    }
    assert sorted(str(p.relative_to(tmp_path / "mops-labstore")) for p in (tmp_path / "mops-labstore").rglob("*")
                  if p.is_file()) == payload["files"]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "mops-labstore"]  # no temporary folder left
    text = run_cli("plugin", "new", "labsim", "--dest", "plugins/sim", cwd=tmp_path)
    assert text.exit_code == 0
    assert "Created discovery plugin 'labsim'" in text.stdout
    assert (tmp_path / "plugins" / "sim" / "src" / "mops_labsim" / "plugin.py").is_file()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Lab", "invalid plugin name 'Lab'"),
        ("lab_store", "invalid plugin name 'lab_store'"),
        ("1lab", "invalid plugin name '1lab'"),
        ("lab--store", "invalid plugin name 'lab--store'"),
        ("x" * 41, "invalid plugin name"),
        ("local", "plugin name 'local' is taken by a built-in plugin or provider"),
        ("oci-layout", "plugin name 'oci-layout' is taken"),
    ],
)
def test_bad_names_are_refused(run_cli: CliRunner, tmp_path: Path, name: str, message: str) -> None:
    result = run_cli("plugin", "new", name, cwd=tmp_path)
    assert result.exit_code == 2
    assert message in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["home"]  # nothing written


def test_an_existing_destination_is_never_touched(run_cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "mops-labsim").mkdir()
    (tmp_path / "mops-labsim" / "mine.txt").write_text("keep")
    result = run_cli("plugin", "new", "labsim", cwd=tmp_path)
    assert result.exit_code == 2
    assert f"{tmp_path / 'mops-labsim'} already exists" in result.stderr
    assert [p.name for p in (tmp_path / "mops-labsim").iterdir()] == ["mine.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("plugin", "new", "labsim", "--dest", str(empty), cwd=tmp_path).exit_code == 2
    assert list(empty.iterdir()) == []


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Path] = []
    original = Path.write_bytes

    def failing_write(self: Path, data: bytes) -> int:
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(self)
        return original(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    with pytest.raises(BundleError, match=r"cannot create the plugin in .*: no space left on device"):
        create_plugin("labsim", "discovery", tmp_path / "new" / "parents" / "mops-labsim")
    assert len(written) == 3 and list(tmp_path.iterdir()) == []  # the staging folder and new parents are gone


def test_unknown_kind_is_a_usage_error(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("plugin", "new", "labsim", "--kind", "hashing", cwd=tmp_path)
    assert result.exit_code == 2 and "invalid choice: 'hashing'" in result.stderr


@pytest.mark.slow
def test_generated_code_is_lint_and_type_clean(run_cli: CliRunner, tmp_path: Path) -> None:
    for kind in KINDS:
        assert run_cli("plugin", "new", f"lab-{kind}", "--kind", kind, "-q", cwd=tmp_path).exit_code == 0
    ruff = [str(BIN / "ruff")]
    lint = subprocess.run([*ruff, "check", "--select", "E,F,W,I,B,UP,SIM,RUF", "."], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatted = subprocess.run([*ruff, "format", "--check", "."], cwd=tmp_path, capture_output=True, text=True,
                               timeout=120)  # fmt: skip
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    for kind in KINDS:
        package = tmp_path / f"mops-lab-{kind}"
        typed = subprocess.run(
            [str(BIN / "mypy"), "--strict", "--cache-dir", str(tmp_path / ".mypy_cache"), "src", "tests"],
            cwd=package, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert typed.returncode == 0, f"{kind}: {typed.stdout}{typed.stderr}"
