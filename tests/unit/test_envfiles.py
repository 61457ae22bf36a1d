"""The light registry and storage views of an environment: the same answers as the validated model,
without pydantic once a file has validated, never trusting a file that changed since, and never
writing a credential into the memo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelops_bundle.core.envfiles import StorageView, registry_environment, storage_section
from modelops_bundle.core.environment import load_environment
from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.hashing import StatCache

DEV = """\
environment: dev
registry:
  provider: docker
  login_server: registry.example.org/lab
  username: modeller
  password: s3cret-value
  insecure: "yes"
  chunk_threshold: 1048576
"""


def _env(tmp_path: Path, text: str | None) -> dict[str, str]:
    home = tmp_path / "modelops-home"
    (home / "bundle-env").mkdir(parents=True)
    if text is not None:
        (home / "bundle-env" / "dev.yaml").write_text(text)
    return {"MODELOPS_HOME": str(home), "HOME": str(tmp_path)}


def test_embedded_local_is_the_layout_under_modelops_home(tmp_path: Path) -> None:
    environ = _env(tmp_path, None)
    view = registry_environment("local", environ)
    full = load_environment("local", environ)
    assert view.registry.provider == full.registry.provider == "oci-layout"
    assert view.registry.path == full.registry.path


def test_file_view_matches_the_validated_model_first_and_second_time(tmp_path: Path) -> None:
    environ = _env(tmp_path, DEV)
    memo = StatCache(tmp_path / "cache.json")
    first = registry_environment("dev", environ, memo)  # validated through the pydantic model
    second = registry_environment("dev", environ, memo)  # read with yaml alone, the file is unchanged
    full = load_environment("dev", environ).registry
    for view in (first, second):
        registry = view.registry
        assert view.environment == "dev"
        assert (registry.provider, registry.login_server, registry.username) == (
            full.provider,
            full.login_server,
            full.username,
        )
        assert registry.insecure is full.insecure is True  # "yes", as pydantic reads it
        assert registry.password is not None and full.password is not None
        assert registry.password.get_secret_value() == full.password.get_secret_value() == "s3cret-value"
        assert "s3cret" not in repr(registry)
        assert registry.model_extra == full.model_extra == {"chunk_threshold": 1048576}


def test_a_changed_file_is_validated_again(tmp_path: Path) -> None:
    environ = _env(tmp_path, DEV)
    memo = StatCache(tmp_path / "cache.json")
    registry_environment("dev", environ, memo)
    path = Path(environ["MODELOPS_HOME"]) / "bundle-env" / "dev.yaml"
    path.write_text(DEV.replace('insecure: "yes"', "insecure: [not, a, bool]"))
    with pytest.raises(ConfigError) as caught:
        registry_environment("dev", environ, memo)
    assert str(path) in caught.value.message and "insecure" in caught.value.message


def test_a_missing_environment_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        registry_environment("nope", _env(tmp_path, None))
    assert "nope" in caught.value.message


def test_a_warm_status_imports_no_pydantic(tmp_path: Path) -> None:
    """The point of the view: `status` with its registry check stays free of pydantic and yaml."""
    env = {**os.environ, **_env(tmp_path, None), "MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    project = tmp_path / "p"
    probe = (
        "import io, sys\n"
        "from modelops_bundle.cli.main import run\n"
        f"assert run(['-C', {str(project)!r}, 'init', '.', '-q'], prog='m') == 0\n"
        f"run(['-C', {str(project)!r}, 'status'], prog='m', stdout=io.StringIO())\n"
        "for name in [m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml')]:\n"
        "    del sys.modules[name]\n"
        f"run(['-C', {str(project)!r}, 'status'], prog='m', stdout=io.StringIO())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml')))\n"
    )
    project.mkdir()
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


PLAIN = """\
environment: dev
registry:
  provider: docker
  login_server: 127.0.0.1:5000
  insecure: true
storage:
  provider: s3
  container: models
  secret_key: hidden-key
"""


def test_a_file_without_registry_secrets_is_remembered_as_its_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = _env(tmp_path, PLAIN)
    memo = StatCache(tmp_path / "cache.json")
    first = registry_environment("dev", environ, memo)
    assert first.storage_provider == "s3" and first.registry.login_server == "127.0.0.1:5000"

    import modelops_bundle.core.validation as validation

    def no_yaml(*_: object) -> None:
        raise AssertionError("the environment file was parsed again")

    monkeypatch.setattr(validation, "parse_yaml", no_yaml)
    again = registry_environment("dev", environ, memo)
    assert (again.registry, again.storage_provider) == (first.registry, "s3")
    memo.save()
    assert "hidden-key" not in (tmp_path / "cache.json").read_text()
    # The storage section holds a secret: it is read from the file whenever it is needed.
    with pytest.raises(AssertionError, match="parsed again"):
        storage_section("dev", environ, memo)


def test_a_registry_secret_is_never_written_to_the_memo(tmp_path: Path) -> None:
    environ = _env(tmp_path, DEV)
    memo = StatCache(tmp_path / "cache.json")
    registry_environment("dev", environ, memo)
    memo.save()
    text = (tmp_path / "cache.json").read_text()
    assert "environment.v3:" in text  # remembered as validated...
    assert "s3cret" not in text and "chunk_threshold" not in text  # ...but not its contents


STORE = """\
environment: lab
registry:
  provider: oci-layout
  path: /srv/registry
storage:
  provider: azure
  container: models
  account_name: lab
  part_size_mib: 8
"""


def test_a_storage_section_without_secrets_is_remembered_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    environ = _env(tmp_path, STORE)
    (Path(environ["MODELOPS_HOME"]) / "bundle-env" / "dev.yaml").write_text(STORE)
    memo = StatCache(tmp_path / "cache.json")
    first = storage_section("dev", environ, memo)
    model = load_environment("dev", environ).storage
    assert model is not None and first is not None
    assert (first.provider, first.container, first.model_extra) == (
        model.provider,
        model.container,
        {"account_name": "lab", "part_size_mib": 8},
    )

    import modelops_bundle.core.validation as validation

    def no_yaml(*_: object) -> None:
        raise AssertionError("the environment file was parsed again")

    monkeypatch.setattr(validation, "parse_yaml", no_yaml)
    assert storage_section("dev", environ, memo) == first


@pytest.mark.parametrize(
    "secret_lines",
    [
        "  connection_string: DefaultEndpointsProtocol=http;AccountKey=c2VjcmV0LWtleQ==\n",
        "  secret_key: aws-secret-value\n",
        "  account_key: c2VjcmV0LWtleQ==\n",
        "  storage_options:\n    anything: aws-secret-value\n",
    ],
)
def test_a_storage_credential_is_never_written_to_the_memo(tmp_path: Path, secret_lines: str) -> None:
    environ = _env(tmp_path, STORE + secret_lines)
    memo = StatCache(tmp_path / "cache.json")
    section = storage_section("dev", environ, memo)
    assert section is not None and section.container == "models"
    memo.save()
    text = (tmp_path / "cache.json").read_text()
    assert "environment.v3:" in text
    assert "c2VjcmV0LWtleQ" not in text and "aws-secret-value" not in text
    # ...and the next run reads the section, credential included, from the file.
    again = storage_section("dev", environ, StatCache.load(tmp_path / "cache.json"))
    assert again is not None and again == storage_section("dev", environ)  # the validated model's values


def test_the_embedded_local_environment_has_a_local_store(tmp_path: Path) -> None:
    environ = _env(tmp_path, None)
    home = Path(environ["MODELOPS_HOME"])
    assert storage_section("local", environ) == StorageView(provider="local", path=str(home / "blobs"))


def test_a_status_loads_only_what_it_uses(tmp_path: Path) -> None:
    """Start-up of a fresh process, as the executables run it: a warm `status` (registry check
    included) loads no pydantic, yaml, OpenSSL (`hashlib`), `tempfile` or `shutil`; one that re-hashes
    an edited file and saves its stat cache loads `hashlib` for the hash and still no `tempfile`."""
    env = {**os.environ, **_env(tmp_path, None), "MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    project = tmp_path / "p"
    project.mkdir()
    (project / "data.csv").write_text("a,b\n1,2\n")
    heavy = ("pydantic", "yaml", "hashlib", "tempfile", "shutil")
    setup = (
        "from modelops_bundle.cli.main import run\n"
        f"assert run(['-C', {str(project)!r}, 'init', '.', '-q'], prog='m') == 0\n"
        f"assert run(['-C', {str(project)!r}, 'add', '.', '-q'], prog='m') == 0\n"
    )
    probe = (
        "import io, sys\n"
        "from modelops_bundle.cli.main import run\n"
        f"assert run(['-C', {str(project)!r}, 'status'], prog='m', stdout=io.StringIO()) == 0\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))\n"
    )

    def imported() -> str:
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert subprocess.run([sys.executable, "-c", setup], env=env, timeout=60).returncode == 0
    imported()  # the first status after init may validate what init did not write itself
    assert imported() == "[]"
    (project / "data.csv").write_text("a,b\n3,4\n")
    assert imported() == "['hashlib']"
