"""The ModelOps worker entry point: ``[project.entry-points."modelops.bundle_repos"] modelops_bundle``.

ModelOps workers load this class by entry point and construct it with keyword arguments
(``registry_ref``, ``cache_dir``, ``cache_structure``, ``default_tag``, ``insecure``); every argument
also has an environment variable, so the same object works when built with none:

==============================  =========================================================================
variable                        meaning
==============================  =========================================================================
``MODELOPS_BUNDLE_REGISTRY``    ``registry_ref``: ``host[:port]/repository`` (or ``host/namespace``
                                when bundle refs name their repository: ``repo@sha256:...``); for the
                                embedded ``local`` environment just ``repository``
``MOPS_ENV``                    the environment file (registry provider, credentials, blob store);
                                default ``local`` (``$MODELOPS_HOME/bundle-env/<env>.yaml``)
``MODELOPS_BUNDLE_CACHE``       ``cache_dir``: the shared cache (default ``$MODELOPS_HOME/cache``)
``MODELOPS_BUNDLE_INSECURE``    ``insecure``: plain HTTP to the registry (automatic for 127.0.0.1)
``REGISTRY_URL``,               registry address and credentials, as for the CLI
``REGISTRY_USERNAME``,
``REGISTRY_PASSWORD``
``MODELOPS_HOME``               where environment files and the default cache live (``~/.modelops``)
==============================  =========================================================================

A bundle ref is ``sha256:<hex>`` (in ``registry_ref``), ``repo@sha256:<hex>`` (``repo`` below
``registry_ref``'s host and namespace) or a full ``host/repo@sha256:<hex>``. Tags are accepted too and
resolved once. ``ensure_local`` returns a :class:`LocalBundle`: a :class:`~pathlib.Path` to the verified
read-only tree in the cache that also unpacks as ``digest, path`` -- the shape ModelOps'
``BundleRepository`` contract returns -- so it works with callers of either form.

A ``trust:`` policy in the environment file is enforced on every call, before anything is fetched or
handed out: a version it refuses raises :class:`~modelops_bundle.core.errors.TrustError` (see
:mod:`modelops_bundle.core.trust`), whether or not the cache holds it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path, PosixPath
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.flags import env_flag

if TYPE_CHECKING:
    from modelops_bundle.core.materialize import Materializer
    from modelops_bundle.core.reference import Reference


class LocalBundle(PosixPath):
    """The folder of a materialised bundle; ``digest, path = bundle`` also works (ModelOps contract)."""

    digest: str = ""

    @classmethod
    def of(cls, path: Path, digest: str) -> LocalBundle:
        bundle = cls(path)
        bundle.digest = digest
        return bundle

    def __iter__(self) -> Iterator[Any]:
        if not self.digest:
            raise TypeError("only the path returned by ensure_local unpacks into (digest, path)")
        return iter((self.digest, Path(self)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_local_bundle, (str(self), self.digest))


def _local_bundle(path: str, digest: str) -> LocalBundle:
    return LocalBundle.of(Path(path), digest)


class BundleRepository:
    """Materialises bundles by digest into the machine's shared, verified cache (see the module docstring)."""

    def __init__(
        self,
        registry_ref: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_structure: str | None = None,  # accepted for ModelOps compatibility; the cache layout is fixed
        default_tag: str = "latest",
        insecure: bool | None = None,
        *,
        env: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        from modelops_bundle.api import REGISTRY_ENV
        from modelops_bundle.core.envfiles import chosen_environment
        from modelops_bundle.core.settings import INSECURE_ENV

        values = dict(os.environ if environ is None else environ)
        if insecure or (insecure is None and env_flag(values, INSECURE_ENV)):
            values[INSECURE_ENV] = "true"
        self.registry_ref = (registry_ref or values.get(REGISTRY_ENV, "")).strip() or None
        self.default_tag = default_tag
        self.env_name = chosen_environment(env, values)
        self.environ = values
        self.cache_dir = cache_dir
        self._materializer: Materializer | None = None
        self._lock = threading.Lock()

    def _engine(self) -> Materializer:
        with self._lock:
            if self._materializer is None:
                from modelops_bundle.core.cache import BundleCache, cache_root
                from modelops_bundle.core.materialize import Materializer
                from modelops_bundle.core.plugins import build_plugin_host
                from modelops_bundle.core.settings_files import load_environment

                root = Path(os.fspath(self.cache_dir)) if self.cache_dir else cache_root(self.environ)
                self._materializer = Materializer(
                    BundleCache(root),
                    build_plugin_host(self.environ),
                    load_environment(self.env_name, self.environ),
                    self.environ,
                )
            return self._materializer

    @property
    def cache_root(self) -> Path:
        return self._engine().cache.root

    def reference(self, bundle_ref: str) -> Reference:
        """The full reference a bundle ref stands for (see the module docstring)."""
        from modelops_bundle.core.errors import UsageError
        from modelops_bundle.core.reference import Reference, is_digest, parse_reference

        text = bundle_ref.strip()
        base = parse_reference(self.registry_ref) if self.registry_ref else None
        if is_digest(text):
            if base is None:
                return Reference("_", None, None, text)
            return Reference(base.repository, base.registry, None, text)
        name, at, digest = text.partition("@")
        if at and base is not None:
            parsed = parse_reference(name)
            if parsed.registry is None:
                joined = f"{base.registry}/{base.repository}/{name}" if base.registry else f"{base.repository}/{name}"
                return parse_reference(f"{joined}@{digest}")
        try:
            reference = parse_reference(text)
        except UsageError:
            raise
        if reference.tag is None and reference.digest is None:
            reference = reference.with_tag(self.default_tag)
        return reference

    def ensure_local(self, bundle_ref: str) -> LocalBundle:
        """The verified tree of ``bundle_ref`` in the shared cache, fetched once per machine.

        Concurrent calls (threads or processes) for one digest download each blob once; all return
        the same complete tree. Raises :class:`~modelops_bundle.core.errors.BundleError` subclasses:
        ``RegistryError`` for a digest the registry does not have, ``IntegrityError`` for bytes that
        do not match, ``StorageError`` for blob-store trouble.
        """
        engine = self._engine()
        text = bundle_ref.strip()
        from modelops_bundle.core.reference import is_digest

        reference = self.reference(text)
        ready = None
        if is_digest(text):  # the hot path: a completed tree needs no registry at all
            with engine.cache.using():
                ready = engine.ready_tree(text)
        digest = text if ready is not None else reference.digest or engine.resolve(reference)
        self._enforce_trust(engine, reference, digest)  # the policy in force, before anything is placed
        if ready is not None:
            return LocalBundle.of(ready, text)
        done = engine.materialize(reference, digest)
        return LocalBundle.of(done.path, digest)

    def _enforce_trust(self, engine: Materializer, reference: Reference, digest: str) -> None:
        """Refuse the version (``TrustError``) unless the trust policy of this repository's environment
        lets it through; a cached version is re-checked (from the signatures kept beside it)."""
        from modelops_bundle.core.materialize import origin_of
        from modelops_bundle.core.trust import enforce_trust, trust_policy

        if reference.repository == "_":  # a bare digest: the cache knows where it came from
            reference = origin_of(engine.cache, digest) or reference
        enforce_trust(
            trust_policy(self.env_name, self.environ),
            reference.repository,
            digest,
            backend=lambda: engine.backend(reference),
            cache=engine.cache,
        )

    def exists(self, bundle_ref: str) -> bool:
        """True when the bundle is complete in the cache or the registry has it; False for a malformed
        ref or an unknown digest. Registry trouble (unreachable, refused) raises."""
        from modelops_bundle.core.errors import UsageError
        from modelops_bundle.core.reference import is_digest

        engine = self._engine()
        text = bundle_ref.strip()
        if is_digest(text) and engine.ready_tree(text) is not None:
            return True
        try:
            reference = self.reference(text)
        except UsageError:
            return False
        if reference.repository == "_":
            return engine.cache.load_version_bytes(text) is not None
        from modelops_bundle.core.versions import resolve_digest

        return resolve_digest(engine.backend(reference), reference) is not None

    def close(self) -> None:
        with self._lock:
            if self._materializer is not None:
                self._materializer.close()
                self._materializer = None
