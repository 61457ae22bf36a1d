"""``mops bundle config``: every key round-trips through the command and the file; a bad value or key is
exit 2 with the file untouched. ``env show`` masks every secret-like option."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_bundle.core import config_keys
from modelops_bundle.core.settings import ProjectConfig
from modelops_bundle.testing import BundleProject, CliRunner

#: A value for every key, and what the command reads back.
VALUES = {
    "repository": ("lab/seir-model", "lab/seir-model"),
    "registry": ("http://127.0.0.1:5999/team", "http://127.0.0.1:5999/team"),
    "default_tag": ("v2", "v2"),
    "cache_dir": ("/tmp/shared-cache", "/tmp/shared-cache"),
    "hash_algorithm": ("sha512", "sha512"),
    "storage.mode": ("blob", "blob"),
    "storage.threshold_bytes": ("2MiB", 2 * 1024 * 1024),
    "storage.force_blob_patterns": ("*.h5,data/big/**", ["*.h5", "data/big/**"]),
    "storage.force_oci_patterns": ("*.py", ["*.py"]),
    "storage.provider": ("s3", "s3"),
    "storage.container": ("bundles", "bundles"),
    "storage.prefix": ("projects/seir", "projects/seir"),
}


def test_every_key_round_trips(bundle_project: BundleProject) -> None:
    assert sorted(VALUES) == sorted(config_keys.config_keys())  # a new key needs a value here
    for key, (text, value) in VALUES.items():
        changed = bundle_project.run("config", key, text, "--json")
        assert changed.exit_code == 0, (key, changed)
        assert changed.json()["value"] == value
        assert bundle_project.run("config", key, "--json").json() == {"key": key, "value": value}
    listed = bundle_project.run("config", "--list", "--json").json()
    assert listed["settings"] == {key: value for key, (_, value) in VALUES.items()}
    assert sorted(listed["set"]) == sorted(VALUES)
    for key in VALUES:
        assert bundle_project.run("config", "--unset", key, "--json").exit_code == 0
    assert (bundle_project.meta / "config.yaml").read_text().splitlines()[1:] == ["{}"]  # all defaults
    # back to the defaults, repository included (the folder's name)
    defaults = bundle_project.run("config", "--json").json()["settings"]
    assert defaults["default_tag"] == "latest" and defaults["storage.threshold_bytes"] == 50 * 1024 * 1024
    assert bundle_project.run("status", "--json").json()["bundle"] == f"{bundle_project.root.name}:latest"


def test_quiet_list_prints_key_value_lines_for_scripts(bundle_project: BundleProject) -> None:
    assert bundle_project.run("config", "storage.threshold_bytes", "1MB").ok
    listed = bundle_project.run("config", "--list", "-q")
    assert listed.exit_code == 0, listed
    lines = listed.stdout.splitlines()
    assert [line.partition("=")[0] for line in lines] == list(config_keys.config_keys())
    assert "storage.threshold_bytes=1000000" in lines and "default_tag=latest" in lines
    assert f"repository={bundle_project.root.name}" in lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("default_tag", "not a tag"), "default_tag: 'not a tag' is not a valid tag"),
        (("storage.threshold_bytes", "lots"), "is not a whole number"),
        (("storage.mode", "sometimes"), "must be one of auto, blob, oci"),
        (("registry", "ftp://x"), "only http:// or https://"),
        (("repository", "Upper Case"), "is not a repository name"),
        (("hash_algorithm", "md5"), "is not one of sha256, sha512"),
        (("storage.treshold_bytes", "1"), "unknown setting 'storage.treshold_bytes'"),
        (("--unset", "nope"), "unknown setting 'nope'"),
    ],
)
def test_bad_values_exit_2_and_leave_the_file_alone(
    bundle_project: BundleProject, args: tuple[str, ...], message: str
) -> None:
    config = bundle_project.meta / "config.yaml"
    before = config.read_bytes()
    result = bundle_project.run("config", *args)
    assert result.exit_code == 2, result
    assert message in result.stderr and "Traceback" not in result.stderr
    assert config.read_bytes() == before


def test_a_typo_gets_the_closest_key(bundle_project: BundleProject) -> None:
    result = bundle_project.run("config", "storage.treshold_bytes", "1")
    assert "did you mean 'storage.threshold_bytes'?" in result.stderr


def test_an_unset_key_without_default_exits_1_and_says_what_applies(bundle_project: BundleProject) -> None:
    result = bundle_project.run("config", "registry")
    assert result.exit_code == 1 and result.stdout == ""
    assert "registry is not set: versions go to the environment's registry, OCI layout" in result.stderr


def test_a_hand_edited_broken_file_is_named(bundle_project: BundleProject) -> None:
    config = bundle_project.meta / "config.yaml"
    config.write_text("repository: x\nstorage:\n  mode: sometimes\n")
    result = bundle_project.run("config", "default_tag", "v2")
    assert result.exit_code == 2 and f"{config}: invalid: storage.mode (line 3)" in result.stderr
    assert config.read_text() == "repository: x\nstorage:\n  mode: sometimes\n"


def test_env_show_masks_every_secret_like_option(run_cli: CliRunner, mops_env: dict[str, str], tmp_path: Path) -> None:
    folder = Path(mops_env["MODELOPS_HOME"]) / "bundle-env"
    folder.mkdir(parents=True)
    secrets = {
        "password": "pw-value-1",
        "api_key": "api-value-2",
        "token": "token-value-3",
        "client_secret": "secret-value-4",
    }
    registry = "".join(f"  {key}: {value}\n" for key, value in secrets.items())
    (folder / "lab.yaml").write_text(
        "environment: lab\nregistry:\n  provider: docker\n  login_server: registry.example.org\n"
        f"  username: me\n{registry}"
        "storage:\n  provider: azure\n  container: c\n  connection_string: 'AccountKey=conn-value-5'\n"
        "  sas_token: sas-value-6\n  account_key: account-value-7\n  storage_options: {credential: nested-8}\n"
    )
    for json_mode in (False, True):
        shown = run_cli("env", "show", "lab", *(("--json",) if json_mode else ()))
        assert shown.exit_code == 0, shown
        for value in (*secrets.values(), "conn-value-5", "sas-value-6", "account-value-7", "nested-8"):
            assert value not in shown.stdout, value
        assert "registry.example.org" in shown.stdout and "me" in shown.stdout
    settings = run_cli("env", "show", "lab", "--json").json()["settings"]
    assert settings["registry"]["api_key"] == "********" and settings["storage"]["storage_options"] == {
        "credential": "********"
    }


def test_config_record_has_no_second_shape() -> None:
    """One shape per setting: the keys `config` offers are exactly the record's fields."""
    assert "storage.threshold_bytes" in config_keys.config_keys()
    assert ProjectConfig._fields[-1] == "storage"
