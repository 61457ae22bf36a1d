"""Token authentication against CNCF distribution in ``auth: token`` mode with the suite's own token server:
the Azure CLI login for ACR (a stand-in ``az`` on PATH), docker's ``identitytoken`` entries, tokens that
expire in the middle of a push, wrong tokens, and ``az`` missing, failing or slow (issue 16, item 2)."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle.core.auth import Authenticator, Credentials, jwt_lifetime
from modelops_bundle.core.errors import RegistryError
from modelops_bundle.plugins.registry_distribution import OciDistributionRegistry
from modelops_bundle.testing import BundleProject
from tests.oci.conftest import PASSWORD, USER, blob
from tests.oci.fake_az import FakeAz
from tests.oci.registries import FaultProxy, RunningRegistry
from tests.oci.test_distribution import roundtrip
from tests.oci.token_server import NULL_GUID, TokenServer

Make = Callable[..., OciDistributionRegistry]
TokenRegistry = tuple[TokenServer, RunningRegistry]
REFRESH = "az-refresh-token-0123456789"


def az_environ(clean_environ: dict[str, str], fake: FakeAz | None) -> dict[str, str]:
    path = clean_environ["PATH"]
    return {**clean_environ, "PATH": f"{fake.folder}:{path}" if fake else path}


def acr_backend(make: Make, host: str, environ: dict[str, str], **settings: Any) -> OciDistributionRegistry:
    """A backend for ``host`` in an environment that says ``provider: acr`` (registry name ``testacr``)."""
    return make(host, provider="acr", acr_name="testacr", environ=environ, **settings)


@pytest.fixture
def fake_az(tmp_path: Path, token_registry: TokenRegistry) -> FakeAz:
    server, registry = token_registry
    server.refresh_tokens.add(REFRESH)
    return FakeAz.install(tmp_path / "az-bin", name="testacr", login_server=registry.host, token=REFRESH)


# ------------------------------------------------------------------------------------- the Azure CLI


def test_az_login_is_used_when_nothing_else_matched(
    token_registry: TokenRegistry,
    fake_az: FakeAz,
    make_distribution: Make,
    clean_environ: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, registry = token_registry
    caplog.set_level(logging.INFO, logger="modelops_bundle")
    backend = acr_backend(make_distribution, registry.host, az_environ(clean_environ, fake_az))
    roundtrip(backend, "acr/roundtrip", tmp_path)
    assert fake_az.calls() == ["acr login --name testacr --expose-token --output json"]
    grants = {(method, grant) for method, grant, _, status in server.grants if status == 200}
    assert grants == {("POST", "refresh_token")}  # the OAuth2 refresh grant, nothing else
    assert "using credentials from the Azure CLI (az acr login --name testacr)" in caplog.text
    assert REFRESH not in caplog.text
    # a second backend in the same process (a worker opening another version) does not run az again
    again = acr_backend(make_distribution, registry.host, az_environ(clean_environ, fake_az))
    assert again.list_tags("acr/roundtrip") == ["v1"]
    assert len(fake_az.calls()) == 1


def test_az_is_not_asked_when_other_credentials_match(
    token_registry: TokenRegistry,
    fake_az: FakeAz,
    make_distribution: Make,
    clean_environ: dict[str, str],
    tmp_path: Path,
) -> None:
    server, registry = token_registry
    environ = {**az_environ(clean_environ, fake_az), "REGISTRY_USERNAME": USER, "REGISTRY_PASSWORD": PASSWORD}
    roundtrip(acr_backend(make_distribution, registry.host, environ), "acr/explicit", tmp_path)
    assert fake_az.calls() == []
    assert {grant for _, grant, _, status in server.grants if status == 200} == {"basic"}


def test_a_token_service_without_the_oauth2_post_gets_the_null_guid_user(
    token_registry: TokenRegistry,
    fake_az: FakeAz,
    make_distribution: Make,
    clean_environ: dict[str, str],
    tmp_path: Path,
) -> None:
    server, registry = token_registry
    server.oauth_post = False
    roundtrip(acr_backend(make_distribution, registry.host, az_environ(clean_environ, fake_az)), "acr/get", tmp_path)
    assert server.requests_of("basic-refresh"), server.grants  # GET with 00000000-...:<refresh token>
    assert all(status == 405 for method, _, _, status in server.grants if method == "POST")


def test_tokens_expiring_mid_push_are_refreshed(
    token_registry: TokenRegistry,
    fake_az: FakeAz,
    make_distribution: Make,
    clean_environ: dict[str, str],
    tmp_path: Path,
) -> None:
    """The registry refuses each token 2 s after it was issued while the client was told 300 s: pushing
    eight blobs through a slowed link takes longer, so requests get 401 and the client fetches anew with
    the refresh token (never running az again)."""
    server, registry = token_registry
    proxy = FaultProxy(registry.port).start()
    try:
        proxy.on_bytes = lambda _in, _out: time.sleep(0.04)  # about 1.5 MB/s
        fake_az.configure(login_server=proxy.host)
        server.registry_lifetime = 2.0
        backend = acr_backend(make_distribution, proxy.host, az_environ(clean_environ, fake_az))
        blobs = [blob(os.urandom(700_000), f"blob {n}") for n in range(8)]
        started = time.monotonic()
        stats = backend.put_blobs("acr/expiring", blobs, jobs=1, progress=None)
        assert time.monotonic() - started > 2.5  # longer than a token lives
        assert stats.uploaded_blobs == 8
        assert all(backend.blob_exists("acr/expiring", b.digest) for b in blobs)
        refused = [path for method, path, status in proxy.requests if status == 401 and path != "/v2/"]
        assert refused, proxy.requests  # tokens did expire under the push...
        push_grants = [g for g in server.grants if g[2].endswith(":pull,push") and g[3] == 200]
        assert len(push_grants) >= 2  # ...and were fetched anew
        assert len(fake_az.calls()) == 1

        # Honest lifetimes: the client renews before the registry would refuse (no 401 on transfers).
        proxy.clear()
        server.registry_lifetime = server.advertised_lifetime = 3.0
        honest = acr_backend(make_distribution, proxy.host, az_environ(clean_environ, fake_az))
        more = [blob(os.urandom(700_000), f"more {n}") for n in range(6)]
        assert honest.put_blobs("acr/expiring", more, jobs=1, progress=None).uploaded_blobs == 6
        assert not [path for method, path, status in proxy.requests if status == 401 and path != "/v2/"]
    finally:
        proxy.stop()


def test_a_wrong_token_is_rejected_clearly(
    token_registry: TokenRegistry,
    fake_az: FakeAz,
    make_distribution: Make,
    clean_environ: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, registry = token_registry
    wrong = "not-a-refresh-token-at-all"
    fake_az.configure(token=wrong)
    caplog.set_level(logging.DEBUG, logger="modelops_bundle")
    backend = acr_backend(make_distribution, registry.host, az_environ(clean_environ, fake_az))
    with pytest.raises(RegistryError) as caught:
        backend.list_tags("acr/wrong")
    text = f"{caught.value} {caught.value.hint}"
    assert "the credentials from the Azure CLI (az acr login --name testacr) were rejected" in str(caught.value)
    assert "az login" in str(caught.value.hint)
    assert wrong not in text and wrong not in caplog.text
    assert len(fake_az.calls()) == 2  # the login was renewed once (an expired session), then given up


def test_az_missing_failing_slow_or_confused_is_summarised(
    token_registry: TokenRegistry, fake_az: FakeAz, make_distribution: Make, clean_environ: dict[str, str]
) -> None:
    from modelops_bundle.core.acr import forget_logins

    _, registry = token_registry

    def failure(environ: dict[str, str]) -> RegistryError:
        forget_logins()
        with pytest.raises(RegistryError) as caught:
            acr_backend(make_distribution, registry.host, environ).list_tags("acr/failing")
        assert "Traceback" not in str(caught.value)
        return caught.value

    missing = failure(az_environ(clean_environ, None))
    assert "requires authentication and no credentials were found" in str(missing)
    assert "the Azure CLI (az) is not on PATH" in str(missing)
    assert "REGISTRY_USERNAME/REGISTRY_PASSWORD not set" in str(missing)
    assert "az login" in str(missing.hint)

    fake_az.configure(
        exit=1,
        stderr="Traceback (most recent call last):\n  File \"x\"\nERROR: Please run 'az login' to setup account.\n",
    )
    failed = failure(az_environ(clean_environ, fake_az))
    assert "'az acr login --name testacr' failed: Please run 'az login' to setup account. (exit 1)" in str(failed)

    fake_az.configure(exit=0, stderr="", stdout="this is not json")
    assert "printed no token" in str(failure(az_environ(clean_environ, fake_az)))

    fake_az.configure(stdout=None, login_server="someoneelse.azurecr.io")
    confused = failure(az_environ(clean_environ, fake_az))
    assert "gave a token for someoneelse.azurecr.io, not 127.0.0.1" in str(confused)

    fake_az.configure(login_server=registry.host, sleep=5)
    started = time.monotonic()
    slow = failure({**az_environ(clean_environ, fake_az), "MOPS_AZ_TIMEOUT": "1"})
    assert "did not finish within 1 s (MOPS_AZ_TIMEOUT)" in str(slow)
    assert time.monotonic() - started < 4


def test_the_refresh_token_stays_on_its_registry_host(
    token_registry: TokenRegistry, fake_az: FakeAz, make_distribution: Make, clean_environ: dict[str, str]
) -> None:
    """Reached as ``localhost``, the registry's token service (on 127.0.0.1) is another host: the Azure
    CLI's refresh token is not sent there."""
    server, registry = token_registry
    host = f"localhost:{registry.port}"
    fake_az.configure(login_server=host)
    with pytest.raises(RegistryError, match=r"refusing to send the credentials from the Azure CLI"):
        acr_backend(make_distribution, host, az_environ(clean_environ, fake_az)).list_tags("acr/other-host")
    assert not server.grants


# ------------------------------------------------------------------------------ docker identity tokens


def test_docker_identity_token_is_a_refresh_token(
    token_registry: TokenRegistry,
    fake_az: FakeAz,
    make_distribution: Make,
    clean_environ: dict[str, str],
    tmp_path: Path,
) -> None:
    """What ``az acr login`` writes for docker: an ``identitytoken`` and the null-GUID user."""
    server, registry = token_registry
    server.refresh_tokens.add("docker-identity-token")
    config = Path(clean_environ["DOCKER_CONFIG"]) / "config.json"
    config.parent.mkdir(parents=True)
    entry = {"auth": base64.b64encode(f"{NULL_GUID}:".encode()).decode(), "identitytoken": "docker-identity-token"}
    config.write_text(json.dumps({"auths": {registry.host: entry}}))
    roundtrip(acr_backend(make_distribution, registry.host, az_environ(clean_environ, fake_az)), "acr/idt", tmp_path)
    assert fake_az.calls() == []  # docker's login matched: az is not asked
    assert {grant for _, grant, _, status in server.grants if status == 200} == {"refresh_token"}


def test_token_lifetime_from_the_jwt_when_expires_in_is_missing(token_registry: TokenRegistry) -> None:
    server, _ = token_registry
    token = server.issue("someone", ["repository:a:pull"])
    left = jwt_lifetime(token)
    assert left is not None and 230 < left <= 240  # exp = now + 300 - 60 (the registry's leeway)
    assert jwt_lifetime("not.a.jwt") is None and jwt_lifetime("opaque") is None

    calls: list[str] = []

    def fetch(method: str, url: str, headers: dict[str, str], params: dict[str, str], form: Any) -> tuple[int, Any]:
        calls.append(method)
        return 200, {"access_token": token}

    auth = Authenticator("h", Credentials(identity_token="rt", source="t"), realm_allowed=lambda _: None)
    auth.learn('Bearer realm="https://h/token"')
    auth.header("repository:a:pull", fetch)
    auth.header("repository:a:pull", fetch)
    assert calls == ["POST"]  # cached for the JWT's lifetime, not the spec's 60 s default


# ------------------------------------------------------------------------------------- on the command line


def _acr_project(mops_env: dict[str, str], tmp_path: Path, host: str) -> BundleProject:
    folder = Path(mops_env["MODELOPS_HOME"]) / "bundle-env"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acr.yaml").write_text(
        f"environment: acr\nregistry:\n  provider: acr\n  login_server: {host}\n  acr_name: testacr\n"
        "  retry_base: 0.01\n"
    )
    project = BundleProject.create(tmp_path / "proj", mops_env, "--env", "acr")
    project.write("data/x.csv", "a,b\n1,2\n")
    assert project.run("add", ".").exit_code == 0
    return project


def test_push_and_status_with_az_on_the_command_line(
    token_registry: TokenRegistry, fake_az: FakeAz, mops_env: dict[str, str], tmp_path: Path
) -> None:
    _, registry = token_registry
    project = _acr_project(mops_env, tmp_path, registry.host)
    path = {"PATH": f"{fake_az.folder}:{os.environ['PATH']}"}
    pushed = project.run("push", "-v", input_env=path)
    assert pushed.exit_code == 0, pushed
    assert "using credentials from the Azure CLI (az acr login --name testacr)" in pushed.stderr
    assert REFRESH not in pushed.stderr + pushed.stdout
    status = project.run("status", "--json", input_env=path)
    assert status.json()["remote"]["state"] == "synced", status

    from modelops_bundle.core.acr import forget_logins

    forget_logins()  # each command is a process of its own; in-process runs share the login memory
    failed = project.run("push", "--tag", "v2", input_env={"PATH": os.environ["PATH"]})
    assert failed.exit_code == 1 and "Traceback" not in failed.stderr
    assert "no credentials were found (tried: " in failed.stderr
    assert "the Azure CLI (az) is not on PATH" in failed.stderr
    assert "hint: install the Azure CLI and sign in with 'az login'" in failed.stderr
