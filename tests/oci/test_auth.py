"""Credential discovery and the challenge parser (no server needed), and that secrets stay masked."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from modelops_bundle.core.auth import (
    Authenticator,
    Credentials,
    docker_config_path,
    normalize_host,
    parse_challenge,
    resolve_credentials,
)
from modelops_bundle.core.errors import ConfigError, RegistryError


def write_config(environ: dict[str, str], config: dict[str, object]) -> None:
    path = Path(environ["DOCKER_CONFIG"]) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))


def helper(tmp_path: Path, name: str, script: str) -> str:
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    path = folder / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(folder)


def test_config_location(clean_environ: dict[str, str]) -> None:
    assert docker_config_path(clean_environ) == Path(clean_environ["DOCKER_CONFIG"]) / "config.json"
    assert docker_config_path({"HOME": "/h"}) == Path("/h/.docker/config.json")
    assert normalize_host("https://Index.Docker.io/v1/") == "index.docker.io"
    hub = {"HOME": "/nonexistent", "DOCKER_CONFIG": clean_environ["DOCKER_CONFIG"]}
    write_config(hub, {"auths": {"https://index.docker.io/v1/": {"auth": base64.b64encode(b"h:p").decode()}}})
    assert resolve_credentials("registry-1.docker.io", hub).username == "h"


def test_precedence_explicit_first(clean_environ: dict[str, str]) -> None:
    encoded = base64.b64encode(b"dock:dockpass").decode()
    write_config(clean_environ, {"auths": {"reg.example.com": {"auth": encoded}}})
    found = resolve_credentials("reg.example.com", clean_environ)
    assert (found.username, found.password) == ("dock", "dockpass")
    found = resolve_credentials("reg.example.com", clean_environ, username="file", password="filepass")
    assert found.username == "file" and "environment file" in found.source
    environ = {**clean_environ, "REGISTRY_USERNAME": "env", "REGISTRY_PASSWORD": "envpass"}
    assert resolve_credentials("reg.example.com", environ, username="file", password="x").username == "env"
    assert resolve_credentials("other.example.com", clean_environ).anonymous


def test_identity_token_and_helpers(clean_environ: dict[str, str], tmp_path: Path) -> None:
    write_config(
        clean_environ,
        {
            "auths": {"tok.example.com": {"identitytoken": "refresh-abc"}, "store.example.com": {}},
            "credHelpers": {"helped.example.com": "mine"},
            "credsStore": "store",
        },
    )
    bin_dir = helper(tmp_path, "mine", 'read h; echo "{\\"Username\\": \\"<token>\\", \\"Secret\\": \\"rt-$h\\"}"\n')
    helper(tmp_path, "store", 'read h; echo "{\\"Username\\": \\"u\\", \\"Secret\\": \\"p-$h\\"}"\n')
    environ = {**clean_environ, "PATH": bin_dir}
    assert resolve_credentials("tok.example.com", environ).identity_token == "refresh-abc"
    helped = resolve_credentials("helped.example.com", environ)
    assert helped.identity_token == "rt-helped.example.com" and helped.username is None
    stored = resolve_credentials("store.example.com", environ)
    assert (stored.username, stored.password) == ("u", "p-store.example.com")


def test_failing_or_missing_helpers_mean_anonymous_with_a_note(clean_environ: dict[str, str], tmp_path: Path) -> None:
    write_config(clean_environ, {"credsStore": "absent", "credHelpers": {"bad.example.com": "failing"}})
    bin_dir = helper(tmp_path, "failing", "echo 'secret-leak-from-stderr' >&2; exit 1\n")
    environ = {**clean_environ, "PATH": bin_dir}
    missing = resolve_credentials("x.example.com", environ)
    assert missing.anonymous and "docker-credential-absent is not installed" in missing.describe()
    failing = resolve_credentials("bad.example.com", environ)
    assert failing.anonymous and "secret-leak-from-stderr" not in failing.describe()
    error = Authenticator("bad.example.com", failing, realm_allowed=lambda _: None).missing_credentials()
    assert "docker-credential-failing found no credentials" in str(error)


def test_broken_config_is_a_config_error(clean_environ: dict[str, str]) -> None:
    path = Path(clean_environ["DOCKER_CONFIG"]) / "config.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"config\.json is not valid JSON"):
        resolve_credentials("reg.example.com", clean_environ)
    write_config(clean_environ, {"credsStore": "../../bin/sh"})
    with pytest.raises(ConfigError, match="invalid credential helper name"):
        resolve_credentials("reg.example.com", clean_environ)


def test_secrets_never_in_repr_or_messages() -> None:
    creds = Credentials("alice", "hunter2-long", source="test")
    text = f"{creds!r} {creds} {Authenticator('h', creds, realm_allowed=lambda _: None)!r}"
    assert "hunter2-long" not in text and "alice" not in text
    auth = Authenticator("h", creds, realm_allowed=lambda _: None)
    basic = creds.basic_value()
    assert basic is not None
    assert auth.mask(f"echo hunter2-long {basic}") == "echo ******** ********"
    assert "hunter2-long" not in str(auth.rejected())


def test_parse_challenge() -> None:
    parsed = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull,push"'
    )
    assert parsed is not None and parsed.scheme == "bearer"
    assert parsed.params == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:team/app:pull,push",
    }
    basic = parse_challenge('Basic realm="test"')
    assert basic is not None and basic.scheme == "basic" and basic.realm == "test"
    assert parse_challenge(None) is None


def test_token_flows_use_the_right_grant() -> None:
    calls: list[tuple[str, str, dict[str, str], dict[str, str], dict[str, str] | None]] = []

    def fetch(
        method: str, url: str, headers: dict[str, str], params: dict[str, str], form: dict[str, str] | None
    ) -> tuple[int, object]:
        calls.append((method, url, headers, params, form))
        return 200, {"access_token": f"tok-{len(calls)}", "expires_in": 600}

    def allow(_: str) -> None:
        return None

    refresh = Authenticator("h", Credentials(identity_token="rt-secret", source="t"), realm_allowed=allow)
    refresh.learn('Bearer realm="https://auth.example/token",service="svc"')
    assert refresh.header("repository:a:pull", fetch) == {"Authorization": "Bearer tok-1"}
    assert refresh.header("repository:a:pull", fetch) == {"Authorization": "Bearer tok-1"}  # cached
    method, _, _, _, form = calls[0]
    assert method == "POST" and form is not None and form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == "rt-secret" and form["scope"] == "repository:a:pull"
    assert refresh.mask("tok-1 and rt-secret") == "******** and ********"

    basic = Authenticator("h", Credentials("u", "p", source="t"), realm_allowed=allow)
    basic.learn('Bearer realm="https://auth.example/token",service="svc"')
    basic.header("repository:a:pull,push", fetch)
    method, _, headers, params, form = calls[-1]
    assert method == "GET" and form is None and headers["Authorization"].startswith("Basic ")
    assert params == {"scope": "repository:a:pull,push", "service": "svc"}

    refused = Authenticator("h", Credentials("u", "p", source="t"), realm_allowed=lambda realm: f"no {realm}")
    refused.learn('Bearer realm="http://evil.example/token"')
    with pytest.raises(RegistryError, match=r"no http://evil\.example/token"):
        refused.header("repository:a:pull", fetch)


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"auths": []}, "'auths' is not an object"),
        ({"auths": {"reg.example.com": "dXNlcjpwdw=="}}, "auths entry 'reg.example.com' is not an object"),
        ({"auths": {"other.example.com": {"auth": base64.b64encode(b"no-colon").decode()}}}, "not base64 'user:pass"),
        ({"auths": {"reg.example.com": {"auth": 5}}}, "not base64 'user:password'"),
        ({"auths": {"reg.example.com": {"identitytoken": ["x"]}}}, "'identitytoken' is not a string"),
        ({"credHelpers": ["pass"]}, "'credHelpers' is not an object"),
        ({"credHelpers": {"reg.example.com": 7}}, "is not a credential helper name"),
        ({"credsStore": {"name": "pass"}}, "credsStore is not a credential helper name"),
    ],
)
def test_docker_config_of_the_wrong_shape_names_the_file(
    clean_environ: dict[str, str], config: dict[str, object], needle: str
) -> None:
    """Issue 15, item 16: docker refuses such a file, and so does this tool (whatever host is asked for)."""
    write_config(clean_environ, config)
    with pytest.raises(ConfigError, match=re.escape(needle)) as caught:
        resolve_credentials("reg.example.com", clean_environ)
    assert str(Path(clean_environ["DOCKER_CONFIG"]) / "config.json") in caught.value.message


def test_docker_config_that_is_a_folder_or_unreadable(clean_environ: dict[str, str]) -> None:
    path = Path(clean_environ["DOCKER_CONFIG"]) / "config.json"
    path.mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"is a folder, not docker's config\.json") as caught:
        resolve_credentials("reg.example.com", clean_environ)
    assert str(path) in caught.value.message and caught.value.exit_code == 2
    path.rmdir()
    environ = {**clean_environ, "DOCKER_CONFIG": str(Path(clean_environ["HOME"]) / "a-file")}
    Path(environ["DOCKER_CONFIG"]).write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot read docker's config file"):
        resolve_credentials("reg.example.com", environ)


def test_what_was_tried_is_listed_when_nothing_matched(clean_environ: dict[str, str]) -> None:
    write_config(clean_environ, {"auths": {"other.example.com": {"auth": base64.b64encode(b"u:p").decode()}}})
    found = resolve_credentials("reg.example.com", clean_environ)
    assert found.anonymous
    assert found.notes == (
        "REGISTRY_USERNAME/REGISTRY_PASSWORD not set",
        "no registry.username/password in the environment file",
        f"no docker login for reg.example.com in {Path(clean_environ['DOCKER_CONFIG']) / 'config.json'}",
    )
    error = Authenticator("reg.example.com", found, realm_allowed=lambda _: None).missing_credentials()
    assert "no credentials were found (tried: REGISTRY_USERNAME/REGISTRY_PASSWORD not set; " in str(error)


def test_az_stderr_is_summarised_in_one_line() -> None:
    from modelops_bundle.core.acr import summarise

    noisy = (
        b'WARNING: something harmless\nTraceback (most recent call last):\n  File "az.py", line 1\n'
        b"ERROR: Please run 'az login' to setup account.\n"
    )
    assert summarise(noisy, 1) == "Please run 'az login' to setup account. (exit 1)"
    assert summarise(b"", 3) == "exit 3"
    assert summarise(b"only a line\x1b[31m\n", 2) == "only a line [31m (exit 2)"
    long = summarise(b"ERROR: " + b"x" * 1000, 1)
    assert len(long) < 260 and long.endswith("... (exit 1)")


def test_which_hosts_get_the_azure_cli_login() -> None:
    from modelops_bundle.core.acr import azure_cli_login, registry_name

    environ = {"PATH": "/nonexistent"}
    assert azure_cli_login("myteam.azurecr.io", {}, environ) is not None
    assert azure_cli_login("registry.example.com", {}, environ) is None
    login = azure_cli_login("registry.example.com:5000", {"provider": "ACR", "acr_name": "team"}, environ)
    assert login is not None and login.command == "az acr login --name team"
    assert registry_name("myteam.azurecr.io", {}) == "myteam"
    assert registry_name("127.0.0.1:5000", {}) == "127"
    with pytest.raises(ConfigError, match="MOPS_AZ_TIMEOUT must be a number"):
        azure_cli_login("myteam.azurecr.io", {}, {"MOPS_AZ_TIMEOUT": "later"})
