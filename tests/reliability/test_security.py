"""Security: known secret values (registry password, Azure connection string, S3 secret key) given in
environment files and in environment variables, used against real servers (htpasswd registry, Azurite,
moto) -- in successful runs, failing runs and ``-v`` tracebacks -- never appear in any output or in any
file the tool wrote (project metadata, MODELOPS_HOME, cache, registry storage: manifests, indexes,
provenance), in plain, base64 or URL-encoded form. Plain HTTP is refused to non-loopback hosts unless
allowed; secret files are ignored by ``add .``; pointers and indexes carry no credentials."""

from __future__ import annotations

import base64
import json
import socket
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops_bundle.testing import BundleProject, CliResult
from tests.oci.registries import RunningRegistry, start_distribution
from tests.reliability.conftest import Trial
from tests.reliability.support import new_project, ok, write_env
from tests.storage.services import AZURITE_KEY, Service, azure_connection_string

USER = "deployer"
REGISTRY_PASSWORD = "Reg1stry-Pa55-" + "q7Zx0vLk3N"
WRONG_PASSWORD = "Wr0ng-Pa55-" + "mB4yT2kP9c"
S3_SECRET = "S3-SeCrEt-" + "Hh28LqXy5RzW"
S3_KEYS = f"access_key: AKIDTEST\nsecret_key: {S3_SECRET}"
WRONG_AZURE_KEY = base64.b64encode(b"a wrong azure key that must never be shown" * 2).decode()


def forms(secret: str) -> set[str]:
    """A secret as it could leak: plain, base64 (alone and as docker's user:pass), URL-encoded."""
    values = {secret, base64.b64encode(secret.encode()).decode().rstrip("=")}
    values.add(base64.b64encode(f"{USER}:{secret}".encode()).decode().rstrip("="))
    values.add(urllib.parse.quote(secret, safe=""))
    return {value for value in values if len(value) >= 8}


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    registry = start_distribution(tmp_path_factory.mktemp("secure-registry"), username=USER, password=REGISTRY_PASSWORD)
    yield registry
    registry.stop()


class Scanner:
    """Collects every output of every command, then scans them and the files written."""

    def __init__(self, secrets: list[str]) -> None:
        self.needles = {needle for secret in secrets for needle in forms(secret)}
        self.outputs: list[tuple[str, str]] = []
        self.runs = 0

    def run(self, project: BundleProject, *args: str, env: dict[str, str | None] | None = None) -> CliResult:
        result = project.run(*args, input_env=env)
        self.runs += 1
        self.outputs.append((" ".join(args), result.stdout + result.stderr))
        return result

    def check_outputs(self) -> None:
        for what, text in self.outputs:
            for needle in self.needles:
                assert needle not in text, f"a secret leaked in the output of {what!r}"

    def check_files(self, roots: list[Path], skip: set[Path]) -> int:
        scanned = 0
        for root in roots:
            for path in root.rglob("*"):
                if not path.is_file() or path.is_symlink() or path in skip:
                    continue
                data = path.read_bytes()
                scanned += 1
                for needle in self.needles:
                    assert needle.encode() not in data, f"a secret leaked into {path}"
        return scanned


def _blob_config(project: BundleProject) -> None:
    assert project.run("config", "storage.threshold_bytes", "100000").ok
    project.write("data/big.bin", b"large file for blob storage\n" * 8000)
    project.write("src/model.py", "X = 1\n")


def test_secrets_never_leak(
    auth_registry: RunningRegistry,
    azurite_service: Service,
    moto_service: Service,
    moto_auth_service: Service,
    mops_env: dict[str, str],
    tmp_path: Path,
    trial: Trial,
) -> None:
    connection = azure_connection_string(azurite_service.url)
    wrong_connection = azure_connection_string(azurite_service.url, WRONG_AZURE_KEY)
    scanner = Scanner([REGISTRY_PASSWORD, WRONG_PASSWORD, AZURITE_KEY, WRONG_AZURE_KEY, S3_SECRET])
    home = Path(mops_env["MODELOPS_HOME"])
    written_by_us: set[Path] = set()
    region = {"AWS_DEFAULT_REGION": "us-east-1"}

    # 1. secrets in environment files
    written_by_us.add(
        write_env(
            mops_env,
            "sec-files",
            auth_registry.host,
            registry={"username": USER, "password": REGISTRY_PASSWORD},
            storage=f'provider: azure\ncontainer: bundles\nconnection_string: "{connection}"',
        )
    )
    written_by_us.add(
        write_env(
            mops_env,
            "sec-s3",
            auth_registry.host,
            registry={"username": USER, "password": REGISTRY_PASSWORD},
            storage=f"provider: s3\ncontainer: bundles\nendpoint: {moto_service.url}\n{S3_KEYS}",
        )
    )
    # 2. secrets in environment variables
    written_by_us.add(
        write_env(mops_env, "sec-vars", auth_registry.host, storage="provider: azure\ncontainer: bundles")
    )
    written_by_us.add(
        write_env(
            mops_env,
            "sec-s3-vars",
            auth_registry.host,
            storage=f"provider: s3\ncontainer: bundles\nendpoint: {moto_service.url}",
        )
    )
    variables: dict[str, dict[str, str | None]] = {
        "sec-files": {},
        "sec-s3": region,
        "sec-vars": {
            "REGISTRY_USERNAME": USER,
            "REGISTRY_PASSWORD": REGISTRY_PASSWORD,
            "AZURE_STORAGE_CONNECTION_STRING": connection,
        },
        "sec-s3-vars": {
            **region,
            "REGISTRY_USERNAME": USER,
            "REGISTRY_PASSWORD": REGISTRY_PASSWORD,
            "AWS_ACCESS_KEY_ID": "AKIDTEST",
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        },
    }
    projects = []
    for env_name, env in variables.items():
        name = f"{env_name}-{uuid.uuid4().hex[:6]}"
        project = new_project(mops_env, tmp_path / name, env_name)
        _blob_config(project)
        ok(scanner.run(project, "add", ".", "--json", env=env))
        pushed = ok(scanner.run(project, "push", "--json", env=env))
        assert pushed["digest"]
        for args in (
            ("status",),
            ("status", "--json", "-v"),
            ("tags",),
            ("env", "show"),
            ("env", "show", "--json"),
            ("push", "-v"),
        ):
            assert scanner.run(project, *args, env=env).exit_code == 0
        clone = new_project(mops_env, tmp_path / f"{name}-clone", env_name, ref=name)
        ok(scanner.run(clone, "pull", "--json", "-v", env=env))
        assert (clone.root / "data/big.bin").read_bytes() == (project.root / "data/big.bin").read_bytes()
        projects += [project, clone]

    # the pushed indexes: blob pointers are plain content-addressed URIs
    backend_env = {"HOME": str(tmp_path), "REGISTRY_USERNAME": USER, "REGISTRY_PASSWORD": REGISTRY_PASSWORD}
    from modelops_bundle.plugins.registry_distribution import OciDistributionRegistry

    backend = OciDistributionRegistry({"url": auth_registry.host, "environ": backend_env})
    pointers = 0
    for project in projects[::2]:
        name = project.root.name
        manifest = json.loads(backend.get_manifest(name, "latest").data)
        index = json.loads(backend.get_blob_bytes(name, manifest["config"]["digest"], None, limit=1 << 20))
        for entry in index["files"]:
            if entry["storage"] == "blob":
                pointers += 1
                uri = entry["blobRef"]["uri"]
                scheme, _, rest = uri.partition("://")
                assert scheme in ("az", "azure", "abfs", "s3") and "@" not in rest.split("/")[0] and "?" not in uri, uri
    backend.close()
    assert pointers == len(projects) // 2

    # 3. failing runs, with tracebacks on: wrong registry password, wrong Azure key, refused S3 secret
    failing = new_project(mops_env, tmp_path / f"failing-{uuid.uuid4().hex[:6]}", "sec-vars")
    _blob_config(failing)
    ok(scanner.run(failing, "add", ".", "--json", env=variables["sec-vars"]))
    bad_password = {**variables["sec-vars"], "REGISTRY_PASSWORD": WRONG_PASSWORD}
    for args in (("push", "-v"), ("push",), ("pull", "-v"), ("tags", "-v"), ("push", "--json", "-v")):
        result = scanner.run(failing, *args, env=bad_password)
        assert result.exit_code == 1 and "rejected" in result.stdout + result.stderr, result
    bad_azure = {**variables["sec-vars"], "AZURE_STORAGE_CONNECTION_STRING": wrong_connection}
    for args in (("push", "-v"), ("push",)):
        result = scanner.run(failing, *args, env=bad_azure)
        assert result.exit_code == 1, result
    written_by_us.add(
        write_env(
            mops_env,
            "sec-s3-refused",
            auth_registry.host,
            registry={"username": USER, "password": REGISTRY_PASSWORD},
            storage=f"provider: s3\ncontainer: bundles\nendpoint: {moto_auth_service.url}\n{S3_KEYS}",
        )
    )
    refused = new_project(mops_env, tmp_path / f"refused-{uuid.uuid4().hex[:6]}", "sec-s3-refused")
    _blob_config(refused)
    ok(scanner.run(refused, "add", ".", "--json", env=region))
    for args in (("push", "-v"), ("push", "--json")):
        result = scanner.run(refused, *args, env=region)
        assert result.exit_code == 1 and "Traceback" in result.stderr if "-v" in args else result.exit_code == 1
    broken = new_project(mops_env, tmp_path / f"broken-{uuid.uuid4().hex[:6]}", "sec-files")
    (broken.meta / "config.yaml").write_text("registry_ref: [\n")
    scanner.run(broken, "push", "-v", env={})  # a traceback while the environment holds secrets

    scanner.check_outputs()
    roots = [home, tmp_path, auth_registry.root]
    scanned = scanner.check_files(roots, skip=written_by_us)
    trial.record(
        "security",
        "secrets (registry password, Azure connection string/account key, S3 secret key; wrong ones too) in "
        "environment files and in REGISTRY_PASSWORD / AZURE_STORAGE_CONNECTION_STRING / AWS_SECRET_ACCESS_KEY, "
        "against an htpasswd registry, Azurite and moto: push, pull, status, tags, env show, failing runs, -v",
        f"{scanner.runs} commands; {scanned} files scanned (project metadata, MODELOPS_HOME, caches, registry "
        f"storage) for {len(scanner.needles)} plain/base64/URL-encoded forms",
        "no secret in any output or written file; blob pointers are plain content-addressed URIs",
    )


INVALID_HOST = "registry.example.invalid:5000"


def test_plain_http_refused_off_loopback(
    mops_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trial: Trial
) -> None:
    attempts: list[object] = []
    real_getaddrinfo = socket.getaddrinfo

    def recording_getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if isinstance(host, str) and host.endswith(".invalid"):
            attempts.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    def refusing_connection(address: object, *args: object, **kwargs: object) -> None:
        attempts.append(address)
        raise OSError("no connection may be attempted")

    monkeypatch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", refusing_connection)
    project = new_project(mops_env, tmp_path / "plain")
    project.write("a.txt", "a\n")
    ok(project.run("add", ".", "--json"))
    project.env["REGISTRY_URL"] = f"http://{INVALID_HOST}"  # the seed README's way to name a registry
    for args in (("push",), ("pull",), ("tags",), ("ensure", "--dest", str(tmp_path / "d"))):
        result = project.run(*args)
        assert result.exit_code == 2 and "refusing plain HTTP" in result.stderr, result
    status = project.run("status", "--json")
    assert status.exit_code == 0 and "refusing plain HTTP" in (status.json()["remote"].get("error") or ""), status
    assert attempts == []
    allowed = project.run("push", input_env={"MODELOPS_BUNDLE_INSECURE": "true"})
    assert allowed.exit_code == 1 and "Traceback" not in allowed.stderr, allowed
    assert attempts, "with MODELOPS_BUNDLE_INSECURE=true the connection is attempted"
    trial.record(
        "security",
        "plain HTTP to a non-loopback registry (`http://registry.example.invalid`): push, pull, tags, ensure, status",
        "5 commands, socket calls recorded",
        "refused (exit 2, status reports it) with no DNS lookup or connection; allowed only with "
        "MODELOPS_BUNDLE_INSECURE=true (then it tries, and fails cleanly)",
    )


SECRET_FILES = [
    ".env",
    ".env.production",
    "config/.env.local",
    "certs/server.pem",
    "certs/tls.key",
    "keys/id_rsa",
    "keys/id_rsa.pub",
    "keys/id_ed25519",
    ".netrc",
    ".pypirc",
    ".git-credentials",
    "deploy/client.p12",
]


def test_secret_files_are_ignored_by_default(
    auth_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    write_env(mops_env, "ignored", auth_registry.host, registry={"username": USER, "password": REGISTRY_PASSWORD})
    project = new_project(mops_env, tmp_path / f"ignored-{uuid.uuid4().hex[:6]}", "ignored")
    for rel in SECRET_FILES:
        project.write(rel, f"SECRET={S3_SECRET}\n")
    project.write("src/model.py", "X = 1\n")
    project.write("data/keys.csv", "k\n1\n")  # not a secret file: a name that merely mentions keys
    ok(project.run("add", ".", "--json"))
    assert project.tracked() == ["data/keys.csv", "src/model.py"]
    pushed = ok(project.run("push", "--json"))
    assert pushed["files"] == 2
    stored = b"".join(path.read_bytes() for path in auth_registry.root.rglob("data") if path.is_file())
    assert S3_SECRET.encode() not in stored
    trial.record(
        "security",
        f"secret files ({', '.join(SECRET_FILES)}) next to ordinary files, then `add .` and push",
        f"{len(SECRET_FILES)} files",
        "none tracked, none pushed (registry storage scanned)",
    )
