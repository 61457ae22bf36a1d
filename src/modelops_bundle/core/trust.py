"""The trust policy: which keys must have signed a version before its files are placed or its code runs.

An environment file may carry one (``$MODELOPS_HOME/bundle-env/<env>.yaml``)::

    trust:
      keys: [ci.pub, "-----BEGIN PUBLIC KEY-----\\n..."]   # public key files (relative to this file) or PEM
      require: true                 # default true: every version must be signed by one of ``keys``
      repositories:                 # per repository (shell patterns on the repository name):
        "lab/*": [lab-ci.pub]       #   a version of lab/... must be signed by one of these keys instead

For a repository that matches one or more patterns, the keys of those patterns -- and only they -- are
trusted, and a signature is required whatever ``require`` says. For any other repository, ``require:
true`` asks for a signature by one of ``keys``; ``require: false`` lets its versions through unchecked.

Enforcement is one call, :func:`enforce_trust`, made by every consumer of versions -- ``pull``,
``ensure``, ``api.materialize``/``run_model``, the worker entry point and, through the API, the Dask
plugin -- after the version's digest is known and before any of its files is fetched, placed or imported.
Signatures found valid are kept beside the version in the shared cache (``versions/<alg>/<hex>/
signatures.json``) so that a worker re-checks a cached version against the policy in force without asking
the registry; they are only candidates, verified again each time with the policy's own keys, and dropped
when the version is refused.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from modelops_bundle.core.errors import BundleError, ConfigError, TrustError

if TYPE_CHECKING:
    from modelops_bundle.core.cache import BundleCache
    from modelops_bundle.core.keys import PublicKey
    from modelops_bundle.core.registry import RegistryBackend
    from modelops_bundle.core.signing import SignatureCheck, StoredSignature

TRUST_SECTION = "trust"
SIGNATURES_FILE = "signatures.json"
_FIELDS = ("keys", "require", "repositories")


# -------------------------------------------------------------------------------------------- the policy


class TrustRule(NamedTuple):
    """What the policy asks of one repository: whether a signature is required, by which keys, and the
    part of the policy that says so (for messages)."""

    required: bool
    keys: tuple[PublicKey, ...]
    why: str


@dataclass(frozen=True)
class TrustPolicy:
    """A parsed ``trust:`` section (see the module docstring); ``source`` is the file it came from."""

    source: str
    keys: tuple[PublicKey, ...]
    require: bool
    repositories: tuple[tuple[str, tuple[PublicKey, ...]], ...] = ()

    def rule_for(self, repository: str) -> TrustRule:
        matched = [(pattern, keys) for pattern, keys in self.repositories if fnmatch.fnmatchcase(repository, pattern)]
        if matched:
            keys = tuple(dict.fromkeys(key for _, group in matched for key in group))
            patterns = ", ".join(repr(pattern) for pattern, _ in matched)
            return TrustRule(True, keys, f"trust.repositories {patterns}")
        if self.require:
            return TrustRule(True, self.keys, "trust.require")
        return TrustRule(False, (), "trust.require: false")

    def to_json(self) -> dict[str, Any]:
        def keys(group: Sequence[PublicKey]) -> list[dict[str, str]]:
            return [{"key_id": key.key_id, "algorithm": key.algorithm, "source": key.source} for key in group]

        return {
            "source": self.source,
            "require": self.require,
            "keys": keys(self.keys),
            "repositories": {pattern: keys(group) for pattern, group in self.repositories},
        }


def parse_trust_policy(data: Any, source_path: Path | None) -> TrustPolicy | None:
    """The policy a ``trust:`` mapping describes (``None`` for no section); :class:`ConfigError` naming
    the file and the entry for anything wrong -- an unknown field, a key file that is missing, not a PEM
    public key, a private key, an unsupported algorithm."""
    if data is None:
        return None
    source = str(source_path) if source_path is not None else "trust policy"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: trust: expected a mapping with {', '.join(_FIELDS)}")
    unknown = sorted(str(key) for key in data if key not in _FIELDS)
    if unknown:
        raise ConfigError(f"{source}: trust.{unknown[0]}: unknown field (known: {', '.join(_FIELDS)})")
    require = data.get("require", True)
    if not isinstance(require, bool):
        raise ConfigError(f"{source}: trust.require: expected true or false, got {require!r}")
    base = source_path.parent if source_path is not None else Path.cwd()
    keys = _keys(data.get("keys"), "trust.keys", source, base, allow_empty=True)
    raw_repositories = data.get("repositories") or {}
    if not isinstance(raw_repositories, Mapping):
        raise ConfigError(f"{source}: trust.repositories: expected a mapping of repository pattern to keys")
    repositories: list[tuple[str, tuple[PublicKey, ...]]] = []
    for pattern, group in raw_repositories.items():
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigError(f"{source}: trust.repositories: {pattern!r} is not a repository pattern")
        where = f"trust.repositories[{pattern!r}]"
        repositories.append((pattern, _keys(group, where, source, base, allow_empty=False)))
    if require and not keys and not repositories:
        raise ConfigError(
            f"{source}: trust.require is true but trust.keys lists no key: no version could ever be accepted",
            hint="list the public keys of your signers ('mops bundle key export --public')",
        )
    return TrustPolicy(source, keys, require, tuple(repositories))


def _keys(value: Any, where: str, source: str, base: Path, *, allow_empty: bool) -> tuple[PublicKey, ...]:
    from modelops_bundle.core.envfiles import expand_path
    from modelops_bundle.core.keys import KeyProblem, public_key_from_pem, read_key_file

    if value is None:
        value = []
    if not isinstance(value, list):
        raise ConfigError(f"{source}: {where}: expected a list of public key files or PEM texts")
    if not value and not allow_empty:
        raise ConfigError(f"{source}: {where}: lists no key")
    found: list[PublicKey] = []
    for number, item in enumerate(value):
        entry = f"{where}[{number}]"
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{source}: {entry}: expected a public key file or PEM text, got {item!r}")
        try:
            if "-----BEGIN" in item:
                key = public_key_from_pem(item, f"{entry} (inline)")
            else:
                path = expand_path(item.strip())
                key = public_key_from_pem(read_key_file(path if path.is_absolute() else base / path), item.strip())
        except KeyProblem as exc:
            shown = "inline PEM" if "-----BEGIN" in item else item.strip()
            raise ConfigError(f"{source}: {entry} ({shown}): {exc}") from None
        found.append(key)
    return tuple(dict.fromkeys(found))


def environment_trust_section(env_name: str, environ: Mapping[str, str]) -> tuple[Any, Path] | None:
    """The raw ``trust:`` mapping of environment ``env_name`` and the file it is in; ``None`` when the
    environment has no file (the embedded ``local``) or no ``trust:`` section.

    The one place that knows where a policy lives: an environment record keeps the sections it does not
    model in its ``options`` (:class:`~modelops_bundle.core.settings.Environment`)."""
    from modelops_bundle.core.envfiles import environment_file
    from modelops_bundle.core.settings_files import load_environment

    path = environment_file(env_name, environ)
    if not path.is_file():
        return None
    data = load_environment(env_name, environ).options.get(TRUST_SECTION)  # validated with the whole file
    return None if data is None else (data, path)


def trust_policy(env_name: str, environ: Mapping[str, str]) -> TrustPolicy | None:
    """The policy in force for environment ``env_name`` (read now: policies change)."""
    found = environment_trust_section(env_name, environ)
    return None if found is None else parse_trust_policy(*found)


# ----------------------------------------------------------------------------------------- enforcement


class TrustVerdict(NamedTuple):
    """The outcome of :func:`enforce_trust` for an accepted version."""

    required: bool
    trusted: SignatureCheck | None = None  # the signature that satisfied the policy
    from_cache: bool = False  # the signature kept in the shared cache satisfied it (no registry asked)


def enforce_trust(
    policy: TrustPolicy | None,
    repository: str,
    digest: str,
    *,
    backend: RegistryBackend | Callable[[], RegistryBackend] | None = None,
    cache: BundleCache | None = None,
) -> TrustVerdict:
    """Refuse -- :class:`TrustError`, exit 1 -- version ``digest`` of ``repository`` unless the policy
    lets it through: not required for this repository, or a signature verified by one of the keys the
    policy trusts for it. Call it once the digest is known and before anything of the version is placed.

    ``backend`` (or a function returning it, called only when needed) is where signatures are read;
    ``cache`` is the shared cache, whose kept signatures are tried first and updated.
    """
    if policy is None:
        return TrustVerdict(False)
    rule = policy.rule_for(repository)
    if not rule.required:
        return TrustVerdict(False)
    from modelops_bundle.core.signing import check_signature

    cached = _cached_signatures(cache, repository, digest) if cache is not None else []
    for stored in cached:
        check = check_signature(stored, repository=repository, digest=digest, trusted=rule.keys)
        if check.trusted_by is not None:
            return TrustVerdict(True, check, from_cache=True)
    if backend is None:
        _forget(cache, digest)
        reason = "its signatures are not in the cache and no registry was given to read them from"
        raise _refusal(policy, rule, repository, digest, [], reason)
    from modelops_bundle.core.signing import fetch_signatures

    registry: RegistryBackend = backend() if callable(backend) else backend
    try:
        stored_list = fetch_signatures(registry, repository, digest)
    except BundleError as exc:
        _forget(cache, digest)
        reason = f"its signatures could not be read: {exc.message}"
        raise _refusal(policy, rule, repository, digest, [], reason) from exc
    checks = [check_signature(item, repository=repository, digest=digest, trusted=rule.keys) for item in stored_list]
    trusted = next((check for check in checks if check.trusted_by is not None), None)
    if trusted is None:
        _forget(cache, digest)
        raise _refusal(policy, rule, repository, digest, checks, None)
    if cache is not None:
        valid = [item for item, check in zip(stored_list, checks, strict=True) if check.valid]
        _keep(cache, repository, digest, valid)
    return TrustVerdict(True, trusted)


def _refusal(
    policy: TrustPolicy,
    rule: TrustRule,
    repository: str,
    digest: str,
    checks: Sequence[SignatureCheck],
    reason: str | None,
) -> TrustError:
    if reason is None:
        if not checks:
            reason = "it has no signature (none attached, or the registry does not keep referrers)"
        else:
            shown = "; ".join(check.describe() for check in checks[:5])
            more = f"; and {len(checks) - 5} more" if len(checks) > 5 else ""
            reason = f"none of its {len(checks)} signature(s) is by a trusted key: {shown}{more}"
    expected = ", ".join(key.describe() for key in rule.keys) or "none (the policy trusts no key for this repository)"
    return TrustError(
        f"{repository}@{digest} refused by the trust policy of {policy.source} ({rule.why}): {reason}",
        hint=f"expected a signature by one of: {expected}; a holder of such a key signs it with "
        f"'mops bundle sign {repository}@{digest} --key KEY'",
    )


# ------------------------------------------------------------------------------ signatures in the cache


def _signatures_path(cache: BundleCache, digest: str) -> Path:
    return cache.version_dir(digest) / SIGNATURES_FILE


def _cached_signatures(cache: BundleCache, repository: str, digest: str) -> list[StoredSignature]:
    from modelops_bundle.core.signing import StoredSignature

    try:
        data = json.loads(_signatures_path(cache, digest).read_bytes())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("digest") != digest or data.get("repository") != repository:
        return []
    raw = data.get("signatures")
    items: list[Any] = raw if isinstance(raw, list) else []
    return [stored for item in items if (stored := StoredSignature.from_cache(item)) is not None]


def _keep(cache: BundleCache, repository: str, digest: str, stored: Sequence[StoredSignature]) -> None:
    """Keep the valid signatures beside the cached version -- only once the version itself is cached
    (``verify --cache`` takes a version folder without its manifest for a damaged one): a version's
    first use reads its signatures from the registry twice at most, later uses not at all."""
    from modelops_bundle.core.fsutil import atomic_write_bytes

    path = _signatures_path(cache, digest)
    if not stored or not (path.parent / "manifest.json").is_file():
        return
    document = {"digest": digest, "repository": repository, "signatures": [item.to_cache() for item in stored]}
    try:
        atomic_write_bytes(path, json.dumps(document, sort_keys=True).encode())
    except BundleError:
        pass  # only an accelerator: the next use reads the registry again


def _forget(cache: BundleCache | None, digest: str) -> None:
    """A refused version keeps no signature in the cache: nothing there vouches for it any more."""
    if cache is None:
        return
    try:
        _signatures_path(cache, digest).unlink()
    except OSError:
        pass


# ------------------------------------------------------------------------------------ verify --signature


@dataclass
class SignatureReport:
    """Every signature of one version, checked (``verify --signature``), against a policy if there is one."""

    repository: str
    digest: str
    checks: list[SignatureCheck]
    policy: TrustPolicy | None
    rule: TrustRule | None

    @property
    def accepted(self) -> bool:
        """Would :func:`enforce_trust` let the version through?"""
        if self.rule is None or not self.rule.required:
            return True
        return any(check.trusted_by is not None for check in self.checks)

    def problems(self) -> list[tuple[str, str, str]]:
        """``(kind, what, detail)`` for each thing wrong: no signature at all, a signature that is not a
        valid signature of this version, and a signed version the policy would refuse."""
        expects = ""
        if self.policy is not None and self.rule is not None and self.rule.required:
            keys = ", ".join(key.describe() for key in self.rule.keys) or "none"
            expects = f"the trust policy of {self.policy.source} ({self.rule.why}) expects one by: {keys}"
        if not self.checks:
            detail = "no signature (none attached, or the registry does not keep referrers)"
            return [("unsigned", self.digest, f"{detail}; {expects}" if expects else detail)]
        found = [
            ("bad-signature", check.referrer, check.problem or "invalid") for check in self.checks if not check.valid
        ]
        if not self.accepted:
            found.append(("untrusted", self.digest, f"no signature by a trusted key: {expects}"))
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "policy": self.policy.source if self.policy is not None else None,
            "required": bool(self.rule and self.rule.required),
            "accepted": self.accepted,
            "signatures": [check.to_json() for check in self.checks],
        }


def check_version_signatures(
    backend: RegistryBackend, repository: str, digest: str, policy: TrustPolicy | None
) -> SignatureReport:
    """Read and check every signature of a version: each one's validity, and which the policy trusts."""
    from modelops_bundle.core.signing import check_signature, fetch_signatures

    rule = policy.rule_for(repository) if policy is not None else None
    trusted = rule.keys if rule is not None and rule.required else policy.keys if policy is not None else ()
    stored = fetch_signatures(backend, repository, digest)
    checks = [check_signature(item, repository=repository, digest=digest, trusted=trusted) for item in stored]
    return SignatureReport(repository, digest, checks, policy, rule)
