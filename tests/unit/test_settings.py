"""The settings layer: one record per section, one validator, one memo, one secret rule.

Environment files and ``config.yaml`` are read into :mod:`modelops_bundle.core.settings` records by
:mod:`modelops_bundle.core.settings_files`; the memo spares YAML parsing on later runs but never holds a
credential, and a file that changed is read and validated again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelops_bundle.core import config_keys
from modelops_bundle.core.errors import ConfigError, UsageError
from modelops_bundle.core.memo import Memo
from modelops_bundle.core.secrecy import MASK, Secret, holds_secret, is_secret_name, masked, secret_values
from modelops_bundle.core.settings import (
    Environment,
    ProjectConfig,
    RegistrySection,
    SettingsError,
    StoragePolicy,
    StorageSection,
    build,
    field_names,
    to_plain,
)
from modelops_bundle.core.settings_files import embedded_local, load_environment, read_config, render_config

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


def _env(tmp_path: Path, text: str | None, name: str = "dev") -> dict[str, str]:
    home = tmp_path / "modelops-home"
    (home / "bundle-env").mkdir(parents=True, exist_ok=True)
    if text is not None:
        (home / "bundle-env" / f"{name}.yaml").write_text(text)
    return {"MODELOPS_HOME": str(home), "HOME": str(tmp_path)}


# ------------------------------------------------------------------------------------------ records


def test_an_environment_file_becomes_one_record(tmp_path: Path) -> None:
    environ = _env(tmp_path, DEV)
    environment = load_environment("dev", environ)
    registry = environment.registry
    assert environment.environment == "dev"
    assert (registry.provider, registry.login_server, registry.username) == (
        "docker",
        "registry.example.org/lab",
        "modeller",
    )
    assert registry.insecure is True  # "yes": the one yes/no word list (core/flags.py)
    assert isinstance(registry.password, Secret) and registry.password.get_secret_value() == "s3cret-value"
    assert "s3cret" not in repr(environment)
    assert dict(registry.options) == {"chunk_threshold": 1048576}  # backend options travel untouched


def test_the_embedded_local_environment_is_a_layout_and_a_blob_folder(tmp_path: Path) -> None:
    environ = _env(tmp_path, None)
    home = Path(environ["MODELOPS_HOME"])
    assert load_environment("local", environ) == embedded_local(environ)
    assert embedded_local(environ).registry == RegistrySection(provider="oci-layout", path=str(home / "registry"))
    assert embedded_local(environ).storage == StorageSection(provider="local", path=str(home / "blobs"))


def test_every_problem_of_a_file_is_named_with_its_key_and_line(tmp_path: Path) -> None:
    environ = _env(tmp_path, DEV.replace('insecure: "yes"', "insecure: sometimes") + "storage: [1, 2]\n")
    with pytest.raises(ConfigError) as caught:
        load_environment("dev", environ)
    message = caught.value.message
    assert str(Path(environ["MODELOPS_HOME"]) / "bundle-env" / "dev.yaml") in message
    assert "registry.insecure (line 7): must be true or false, not 'sometimes'" in message
    assert "storage (line 9): must be a mapping" in message


def test_a_missing_environment_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_environment("nope", _env(tmp_path, None))
    assert "'nope' not found" in caught.value.message and caught.value.hint == "available: local"


def test_an_unknown_key_is_refused_with_the_closest_known_one() -> None:
    with pytest.raises(SettingsError) as caught:
        build(ProjectConfig, {"repositry": "x", "storage": {"threshhold_bytes": 1, "mode": "sometimes"}})
    problems = dict(caught.value.problems)
    assert problems[("repositry",)] == "unknown key (did you mean 'repository'?)"
    assert problems[("storage", "threshhold_bytes")] == "unknown key (did you mean 'threshold_bytes'?)"
    assert problems[("storage", "mode")] == "must be one of auto, blob, oci, not 'sometimes'"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"default_tag": "no spaces"}, "is not a valid tag"),
        ({"repository": "Upper"}, "is not a repository name"),
        ({"registry": "ftp://host"}, "only http:// or https://"),
        ({"hash_algorithm": "md5"}, "is not one of sha256, sha512"),
        ({"storage": {"threshold_bytes": -1}}, "must be 0 or more"),
        ({"storage": {"threshold_bytes": True}}, "must be a whole number"),
        ({"storage": {"force_blob_patterns": "*.bin"}}, "must be a list"),
        ({"default_tag": 1.5}, "put it in quotes"),
    ],
)
def test_values_are_checked_by_the_type_and_checks_of_their_field(data: dict[str, object], problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        build(ProjectConfig, data)
    assert problem in str(caught.value)


def test_a_record_round_trips_through_plain_data() -> None:
    config = ProjectConfig(
        repository="seir", registry="ghcr.io/lab", storage=StoragePolicy(force_blob_patterns=("*.h5",))
    )
    plain = to_plain(config)
    assert plain == {"repository": "seir", "registry": "ghcr.io/lab", "storage": {"force_blob_patterns": ["*.h5"]}}
    assert build(ProjectConfig, plain) == config
    assert build(ProjectConfig, json.loads(json.dumps(plain))) == config


# ------------------------------------------------------------------------------------------- memo


def test_an_unchanged_file_is_not_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    environ = _env(tmp_path, DEV.replace("  password: s3cret-value\n", ""))
    memo = Memo(tmp_path / "memo.json")
    first = load_environment("dev", environ, memo)
    memo.save()

    import modelops_bundle.core.validation as validation

    def no_yaml(*_: object) -> None:
        raise AssertionError("the environment file was parsed again")

    monkeypatch.setattr(validation, "parse_yaml", no_yaml)
    assert load_environment("dev", environ, Memo.load(tmp_path / "memo.json")) == first


def test_a_changed_file_is_read_and_validated_again(tmp_path: Path) -> None:
    environ = _env(tmp_path, DEV)
    memo = Memo(tmp_path / "memo.json")
    load_environment("dev", environ, memo)
    path = Path(environ["MODELOPS_HOME"]) / "bundle-env" / "dev.yaml"
    path.write_text(DEV.replace('insecure: "yes"', "insecure: [not, a, bool]"))
    with pytest.raises(ConfigError) as caught:
        load_environment("dev", environ, memo)
    assert str(path) in caught.value.message and "insecure" in caught.value.message


@pytest.mark.parametrize(
    "secret_lines",
    [
        "  password: s3cret-value\n",
        "  api_key: s3cret-value\n",
        "  token: s3cret-value\n",
    ],
)
def test_a_registry_credential_is_never_written_to_the_memo(tmp_path: Path, secret_lines: str) -> None:
    environ = _env(tmp_path, DEV.replace("  password: s3cret-value\n", secret_lines))
    memo = Memo(tmp_path / "memo.json")
    assert load_environment("dev", environ, memo).registry.login_server == "registry.example.org/lab"
    memo.save()
    assert not (tmp_path / "memo.json").exists() or "s3cret" not in (tmp_path / "memo.json").read_text()


STORE = """\
environment: lab
registry:
  provider: oci-layout
  path: /srv/registry
storage:
  provider: azure
  container: models
  account_name: lab
"""


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
    memo = Memo(tmp_path / "memo.json")
    first = load_environment("dev", environ, memo)
    memo.save()
    text = (tmp_path / "memo.json").read_text() if (tmp_path / "memo.json").exists() else ""
    assert "c2VjcmV0LWtleQ" not in text and "aws-secret-value" not in text
    # ...and the next run reads the section, credential included, from the file.
    assert load_environment("dev", environ, Memo.load(tmp_path / "memo.json")) == first


def test_a_corrupt_memo_is_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "memo.json").write_text("{not json")
    memo = Memo.load(tmp_path / "memo.json")
    assert memo.get("config", [1, 2, 3, 4]) is None
    memo.put("config", [1, 2, 3, 4], {"repository": "x"})
    memo.save()
    assert Memo.load(tmp_path / "memo.json").get("config", [1, 2, 3, 4]) == {"repository": "x"}


# ---------------------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    "name", ["password", "api_key", "account_key", "secret_key", "sas_token", "connection_string", "client_secret"]
)
def test_one_rule_names_secrets(name: str) -> None:
    assert is_secret_name(name)
    assert masked({"storage": {name: "value"}}) == {"storage": {name: MASK}}
    assert holds_secret({"storage": {name: "value"}})
    assert secret_values([(name, "value-1234")]) == ["value-1234"]


@pytest.mark.parametrize(
    "name", ["provider", "login_server", "container", "insecure", "requires_auth", "region", "keys", "public_key"]
)
def test_ordinary_settings_are_not_secrets(name: str) -> None:
    assert masked({"registry": {name: "value"}}) == {"registry": {name: "value"}}
    assert not holds_secret({"registry": {name: "value"}})
    assert holds_secret({"storage": {name: {"nested": "may hide anything"}}})


def test_secret_values_of_a_connection_string_include_its_key() -> None:
    values = secret_values([("connection_string", Secret("Endpoint=x;AccountKey=abcd1234;Name=y"))])
    assert values == ["Endpoint=x;AccountKey=abcd1234;Name=y", "abcd1234"]


# -------------------------------------------------------------------------------------- config.yaml


def test_config_yaml_of_an_earlier_release_is_read_with_its_registry_ref(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("registry_ref: 127.0.0.1:5000/seir\ndefault_tag: latest\nhash_algorithm: sha256\n")
    file = read_config(path)
    assert file.legacy_registry_ref == "127.0.0.1:5000/seir"
    assert (file.config.repository, file.config.registry) == ("seir", "127.0.0.1:5000")
    path.write_text("registry_ref: seir\n")
    assert read_config(path).config == ProjectConfig(repository="seir")


def test_config_yaml_as_release_0_2_0_wrote_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "# modelops-bundle configuration (see docs/formats.md)\nregistry_ref: seir-model\ndefault_tag: latest\n"
        "hash_algorithm: sha256\nstorage:\n  mode: auto\n  threshold_bytes: 52428800\n  force_blob_patterns: []\n"
        "  force_oci_patterns: []\n  prefix: ''\n"
    )
    file = read_config(path)
    assert file.config == ProjectConfig(repository="seir-model") and file.legacy_registry_ref == "seir-model"


def test_render_writes_only_what_is_set(tmp_path: Path) -> None:
    text = render_config(ProjectConfig(repository="seir", storage=StoragePolicy(threshold_bytes=10)))
    assert text.splitlines()[1:] == ["repository: seir", "storage:", "  threshold_bytes: 10"]


def test_config_keys_cover_every_field() -> None:
    keys = config_keys.config_keys()
    assert [key for key in keys if "." not in key] == [n for n in field_names(ProjectConfig) if n != "storage"]
    assert [key.partition(".")[2] for key in keys if key.startswith("storage.")] == field_names(StoragePolicy)


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("storage.threshold_bytes", "100MiB", 100 * 1024**2),
        ("storage.threshold_bytes", "5 MB", 5_000_000),
        ("storage.force_blob_patterns", "*.h5, data/big/**", ["*.h5", "data/big/**"]),
        ("storage.force_blob_patterns", "", []),
        ("registry", "http://127.0.0.1:5000/ns", "http://127.0.0.1:5000/ns"),
        ("default_tag", "v2", "v2"),
    ],
)
def test_config_values_are_parsed_by_type(key: str, text: str, value: object) -> None:
    config = config_keys.with_value(ProjectConfig(repository="p"), key, config_keys.parse_value(key, text))
    assert config_keys.get_value(config, key) == value


@pytest.mark.parametrize(
    ("key", "text", "problem"),
    [
        ("storage.threshold_bytes", "lots", "is not a whole number"),
        ("storage.mode", "sometimes", "must be one of auto, blob, oci"),
        ("registry", "not a host!", "is not a registry address"),
        ("repository", "Bad_Name", "is not a repository name"),
    ],
)
def test_config_values_are_refused_before_anything_is_written(key: str, text: str, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        config_keys.with_value(ProjectConfig(repository="p"), key, config_keys.parse_value(key, text))
    assert problem in caught.value.message and caught.value.exit_code == 2


def test_an_unknown_config_key_suggests_the_closest() -> None:
    with pytest.raises(UsageError) as caught:
        config_keys.check_key("storage.treshold_bytes")
    assert caught.value.hint == "did you mean 'storage.threshold_bytes'?"


# ----------------------------------------------------------------------------------------- start-up


def test_a_status_loads_only_what_it_uses(tmp_path: Path) -> None:
    """Start-up of a fresh process, as the executables run it: a warm `status` (registry check
    included) loads no pydantic, yaml, OpenSSL (`hashlib`), `tempfile`, `shutil` or `dataclasses` (decision
    0017); one that re-hashes an edited file and saves its stat cache loads `hashlib` for the hash and still
    no `tempfile`."""
    env = {**os.environ, **_env(tmp_path, None), "MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    project = tmp_path / "p"
    project.mkdir()
    (project / "data.csv").write_text("a,b\n1,2\n")
    heavy = ("pydantic", "yaml", "hashlib", "tempfile", "shutil", "dataclasses")
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


def test_a_warm_status_with_an_environment_file_parses_no_yaml(tmp_path: Path) -> None:
    env = {
        **os.environ,
        **_env(tmp_path, DEV.replace("  password: s3cret-value\n", "")),
        "MOPS_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    project = tmp_path / "p"
    project.mkdir()
    probe = (
        "import io, sys\n"
        "from modelops_bundle.cli.main import run\n"
        f"run(['-C', {str(project)!r}, 'status', '--offline'], prog='m', stdout=io.StringIO())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml')))\n"
    )
    init = (
        "from modelops_bundle.cli.main import run\n"
        f"run(['-C', {str(project)!r}, 'init', '.', '--env', 'dev', '-q'], prog='m')"
    )
    assert subprocess.run([sys.executable, "-c", init], env=env, timeout=60).returncode == 0
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_environment_record_keeps_unknown_sections(tmp_path: Path) -> None:
    environment = build(Environment, {"environment": "x", "registry": {}, "trust": {"require": True}})
    assert dict(environment.options) == {"trust": {"require": True}}
