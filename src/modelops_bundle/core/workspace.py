"""The working tree as the tool sees it: tracked list, sync state, settings, ignore rules, digests.

Every metadata file is validated the first time it is read in a given state; its fingerprint (size,
mtime, inode, ctime) is then remembered in the settings memo (:mod:`.memo`), so a warm ``status``
re-validates nothing and imports neither pydantic, yaml nor pathspec. Writes go through atomic replaces.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat as stat_module
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from modelops_bundle.core.errors import BundleError, ConfigError
from modelops_bundle.core.fsutil import atomic_write_text, exclusive_lock, require_real_folder
from modelops_bundle.core.hashing import (
    Hasher,
    HashJob,
    ProgressSink,
    StatCache,
    format_digest,
    hash_files,
    racy_margin,
)
from modelops_bundle.core.ignore import IgnoreRules, compile_rule_sets, rules_fingerprint
from modelops_bundle.core.memo import MEMO_FILE, Memo
from modelops_bundle.core.paths import FILE_TYPE_BITS, UNSTORABLE_CHARACTER, invalid_reason, is_sorted, shown_path
from modelops_bundle.core.project import Project
from modelops_bundle.core.stat_probe import ASK_AGAIN, StatProbe, can_fork
from modelops_bundle.core.validation import parse_json, read_text
from modelops_bundle.core.walk import WalkResult, symlink_verdict, walk

if TYPE_CHECKING:
    from modelops_bundle.core.settings import ProjectConfig
    from modelops_bundle.core.settings_files import ConfigFile

#: Memo keys of the validated tracked list and sync state (``.v2``: stricter checks -- a file validated
#: by an earlier build is validated again).
TRACKED_MEMO = "tracked.v2"
STATE_MEMO = "state.v2"
VERSION_CONFIGS_MEMO = "version-configs"
#: A cache temp file older than this is a killed command's (cache writes take well under a second).
STALE_CACHE_TEMP_SECONDS = 600
PULL_JOURNAL = "pull-journal.json"  # core/pull_apply.JOURNAL (not imported: a status never needs that module)
ENV_PIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class SyncState:
    """The last synced side of the 3-way comparison (``state.json``).

    ``last_synced_files`` are the files of ``last_synced_digest``, the version this project last pushed or
    fully pulled. ``known_digests`` remembers the versions it pushed or pulled (most recent last): a tag at
    any of them was moved by this project, not by someone else. A plain class (decision 0017): compared
    field by field, copied with :meth:`replace`.
    """

    __slots__ = (
        "known_digests",
        "last_pull_digest",
        "last_push_digest",
        "last_synced_digest",
        "last_synced_files",
        "last_synced_ref",
    )
    FIELDS = (
        "last_push_digest",
        "last_pull_digest",
        "last_synced_ref",
        "last_synced_files",
        "last_synced_digest",
        "known_digests",
    )
    KNOWN_LIMIT = 64  # versions remembered; older ones age out

    def __init__(
        self,
        last_push_digest: str | None = None,
        last_pull_digest: str | None = None,
        last_synced_ref: str | None = None,
        last_synced_files: dict[str, str] | None = None,
        last_synced_digest: str | None = None,
        known_digests: list[str] | None = None,
    ) -> None:
        self.last_push_digest = last_push_digest
        self.last_pull_digest = last_pull_digest
        self.last_synced_ref = last_synced_ref
        self.last_synced_files: dict[str, str] = {} if last_synced_files is None else last_synced_files
        self.last_synced_digest = last_synced_digest
        self.known_digests: list[str] = [] if known_digests is None else known_digests

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SyncState) and self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    def __repr__(self) -> str:
        return "SyncState(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS) + ")"

    def replace(self, **changes: Any) -> SyncState:
        """A copy with ``changes`` (field names as keywords)."""
        values = dict(zip(self.FIELDS, self._values(), strict=True))
        values.update(changes)
        return SyncState(**values)

    @property
    def synced_digest(self) -> str | None:
        """The version ``last_synced_files`` describes (state files of older releases: the last push/pull)."""
        return self.last_synced_digest or self.last_push_digest or self.last_pull_digest

    def known(self) -> set[str]:
        """Every version this project pushed or fully pulled."""
        return {d for d in (*self.known_digests, self.last_push_digest, self.last_pull_digest) if d}

    def after_sync(self, *, digest: str, ref: str, files: dict[str, str], pushed: bool) -> SyncState:
        """The state after a push (``pushed``) or a full pull of version ``digest``."""
        earlier = [d for d in self.known_digests if d != digest][-(self.KNOWN_LIMIT - 1) :]
        known = [*earlier, digest]
        return SyncState(
            last_push_digest=digest if pushed else self.last_push_digest,
            last_pull_digest=self.last_pull_digest if pushed else digest,
            last_synced_ref=ref,
            last_synced_files=dict(files),
            last_synced_digest=digest,
            known_digests=known,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "last_push_digest": self.last_push_digest,
            "last_pull_digest": self.last_pull_digest,
            "last_synced_ref": self.last_synced_ref,
            "last_synced_digest": self.last_synced_digest,
            "known_digests": list(self.known_digests),
            "last_synced_files": dict(sorted(self.last_synced_files.items())),
        }


class FileInfo(NamedTuple):
    """One tracked file on disk (a tuple: tens of thousands are made per status)."""

    rel: str
    size: int
    mode: int
    digest: str  # "<algorithm>:<hex>"


class Scan:
    """A snapshot of the tracked files on disk (and, when asked, the untracked ones). A plain class (see
    decision 0017)."""

    __slots__ = (
        "algorithm",
        "files",
        "hashed_bytes",
        "hashed_files",
        "missing",
        "skipped",
        "unbundlable",
        "untracked",
    )

    def __init__(
        self,
        algorithm: str,
        files: dict[str, FileInfo],
        missing: list[str],
        skipped: list[tuple[str, str]],
        untracked: list[str] | None = None,
        hashed_files: int = 0,
        hashed_bytes: int = 0,
    ) -> None:
        self.algorithm = algorithm
        self.files = files
        self.missing = missing
        self.skipped = skipped
        self.untracked = untracked
        self.hashed_files = hashed_files
        self.hashed_bytes = hashed_bytes
        #: With the untracked files: the untracked paths the walk left out, and why (a symlink out of the
        #: project, a special file, a name no bundle path can hold, a folder that cannot be read).
        self.unbundlable: list[tuple[str, str]] = []


class Workspace:
    """Reads (and, under the project lock, writes) one project's metadata."""

    def __init__(self, project: Project) -> None:
        self.project = project
        project.check_folders()
        if os.path.lexists(project.meta / PULL_JOURNAL):
            from modelops_bundle.core.pull_apply import recover

            recover(project.root, project.meta, project.lock_path)
        self.cache = StatCache.load(project.cache_dir / "stat-cache.json")
        self.memo = Memo.load(project.cache_dir / MEMO_FILE)
        self._tracked: list[str] | None = None
        self._state: SyncState | None = None
        self._config: ConfigFile | None = None
        self._rules: IgnoreRules | None = None
        self._rules_key = ""
        self._real_folders: set[str] = set()  # folders walks of this command went through

    # ------------------------------------------------------------------ locking and persistence

    def lock(self, wait: bool = True) -> Any:
        """The project lock: held by every command that writes project state."""
        return exclusive_lock(self.project.lock_path, wait=wait)

    def save_caches(self) -> None:
        """Persist the stat cache and the settings memo (best effort: they are only caches)."""
        self.cache.save()
        self.memo.save()

    # ------------------------------------------------------------------ tracked list

    def tracked(self) -> list[str]:
        if self._tracked is None:
            path = self.project.tracked_path
            self.memo.cached(TRACKED_MEMO, path, lambda: _validate_tracked(path))
            text = read_text(path, what="tracked list", exact=True)
            if not text and self.state().last_synced_files:
                raise ConfigError(
                    f"{path}: empty, but {self.project.state_path.name} records synced files: the tracked list "
                    "looks truncated (an empty list is written as one empty line)",
                    hint="restore it, or list the tracked paths one per line (one empty line: nothing tracked)",
                )
            self._tracked = _parse_tracked_lines(text)
        return self._tracked

    def save_tracked(self, paths: Iterable[str]) -> None:
        ordered = sorted(set(paths))
        # One line per path: a path with a newline would come back as two. Checked in one pass over all.
        if UNSTORABLE_CHARACTER.search("/".join(ordered)):
            bad = next(rel for rel in ordered if UNSTORABLE_CHARACTER.search(rel))
            raise BundleError(f"cannot track '{shown_path(bad)}': {invalid_reason(bad)}")
        # Only a long path can break the depth and length limits (issue 15): the rest are not re-checked.
        long_bad = next((rel for rel in ordered if len(rel) > 250 and invalid_reason(rel)), None)
        if long_bad is not None:
            raise BundleError(f"cannot track '{shown_path(long_bad)}': {invalid_reason(long_bad)}")
        atomic_write_text(self.project.tracked_path, tracked_text(ordered))
        self._tracked = ordered
        self.memo.remember(TRACKED_MEMO, self.project.tracked_path, True)

    def sweep_leftovers(self) -> None:
        """Remove what a killed command left in ``.modelops-bundle/``: pull staging folders and the temp
        files of interrupted atomic writes of the metadata files. Call under the project lock: every
        writer of those paths holds it, so nothing found here is in use.

        Found by tests/reliability/test_kills.py: a pull SIGKILLed mid-download left ``staging/pull-*``
        (with partial downloads) that no later run removed, so the leftovers grew with every interrupted
        pull. Stale temp files of the cache folder go too (killed cache writes).
        """
        import shutil  # here: a status never needs it

        meta = require_real_folder(self.project.meta)
        require_real_folder(meta / "staging")
        require_real_folder(self.project.cache_dir)
        with contextlib.suppress(OSError):
            for leftover in (meta / "staging").iterdir():
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
        with contextlib.suppress(OSError):
            for leftover in meta.iterdir():
                if leftover.name.startswith(".") and leftover.name.endswith(".tmp") and leftover.is_file():
                    leftover.unlink()
        # The caches are written without the lock (a status saves its stat cache): only temp files too
        # old to belong to a running command are leftovers there.
        cutoff = time.time() - STALE_CACHE_TEMP_SECONDS
        with contextlib.suppress(OSError):
            for leftover in self.project.cache_dir.iterdir():
                if leftover.name.startswith(".") and leftover.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        st = leftover.lstat()
                        if stat_module.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                            leftover.unlink()

    # ------------------------------------------------------------------ sync state

    def state(self) -> SyncState:
        if self._state is None:
            path = self.project.state_path
            if not path.exists():
                self._state = SyncState()
            else:
                self.memo.cached(STATE_MEMO, path, lambda: _validate_state(path))
                data = json.loads(read_text(path, what="sync state"))
                self._state = SyncState(**data)
        return self._state

    def save_state(self, state: SyncState) -> None:
        atomic_write_text(self.project.state_path, json.dumps(state.to_json(), indent=2) + "\n")
        self._state = state
        self.memo.remember(STATE_MEMO, self.project.state_path, True)

    def version_configs(self) -> dict[str, str]:
        """``{manifest digest: config (index) digest}`` of versions this project pushed or pulled, so a
        push that looks for an identical earlier version fetches only the manifests that can match
        (machine-local and disposable: a version missing here is simply fetched)."""
        data = self.memo.get(VERSION_CONFIGS_MEMO, 1)
        return dict(data) if isinstance(data, dict) else {}

    def remember_version_config(self, state: SyncState, digest: str, config_digest: str) -> None:
        """Record ``digest``'s config digest; versions ``state`` no longer knows are forgotten."""
        known = state.known()
        configs = {d: c for d, c in self.version_configs().items() if d in known and isinstance(c, str)}
        configs[digest] = config_digest
        self.memo.put(VERSION_CONFIGS_MEMO, 1, configs)

    # ------------------------------------------------------------------ settings

    def config_file(self) -> ConfigFile:
        """``config.yaml`` as written (one of an earlier release still holds ``registry_ref``: the
        session migrates it, :attr:`.session.Session.config`)."""
        if self._config is None:
            from modelops_bundle.core.settings_files import read_config

            self._config = read_config(self.project.config_path, self.memo)
        return self._config

    def config(self) -> ProjectConfig:
        """The settings of ``config.yaml`` that need no environment to read (hashing, storage policy,
        cache folder); where versions go is :attr:`.session.Session.target`'s to say."""
        return self.config_file().config

    def env_name(self) -> str:
        path = self.project.env_path
        name = read_text(path, what="environment pin").strip()
        if not name or not set(name) <= ENV_PIN_CHARS:
            raise ConfigError(f"{path}: invalid environment name {name!r}")
        return name

    # ------------------------------------------------------------------ ignore rules

    def ignore_rules(self) -> IgnoreRules:
        if self._rules is None:
            from modelops_bundle.core.ignore import read_ignore_file

            text = read_ignore_file(self.project.ignore_path)
            key = self._rules_key = rules_fingerprint(text)
            cached = self.memo.get("ignore", key)
            if isinstance(cached, list) and len(cached) == 2:
                hard, soft = cached
                self._rules = IgnoreRules([tuple(p) for p in hard], [tuple(p) for p in soft])
            else:
                hard, soft = compile_rule_sets(text)
                self.memo.put("ignore", key, [hard, soft])
                self._rules = IgnoreRules(hard, soft)
        return self._rules

    def remember_fresh(self, config: ProjectConfig) -> None:
        """Record the metadata files ``init`` just wrote as validated (they were made from validated
        records), so the first command after ``init`` does not validate them again."""
        from modelops_bundle.core.settings import to_plain

        self.memo.remember("config", self.project.config_path, to_plain(config))
        self.memo.remember(TRACKED_MEMO, self.project.tracked_path, True)
        self.memo.remember(STATE_MEMO, self.project.state_path, True)
        self.memo.save()

    # ------------------------------------------------------------------ scanning

    def walk(self, start_rel: str = "", *, honour_ignores: bool = True, want: set[str] | None = None) -> WalkResult:
        rules = self.ignore_rules()
        listings = self.cache.listings
        listings.use_rules(self._rules_key)
        result = walk(
            str(self.project.root),
            start_rel,
            rules,
            honour_ignores=honour_ignores,
            want=want or (),
            listings=listings,
        )
        self._real_folders.update(result.folders)
        return result

    def _worth_probing(self, wanted: list[str]) -> bool:
        """Whether a stat-probe child pays for ``wanted``: it can only confirm files the cache holds, so
        not when most are new (a first ``add``), and only where forking is safe (:func:`can_fork`)."""
        return len(self.cache.entries) * 2 >= len(wanted) and can_fork(len(wanted))

    def _probe_during_walk(self, wanted: list[str], prefix: str) -> StatProbe | None:
        """A child that checks the paths after the first :func:`walk_share` of them against the stat
        cache while this process walks the tree (and then checks that first share itself), taking the
        folders of the folder-listing cache as the real ones -- which the walk then confirms (the caller
        drops the child's answers when a folder it took as real is not one any more)."""
        listings = self.cache.listings
        self.ignore_rules()  # sets the rules key the listings must have been made under
        if not (listings.folders and listings.rules == self._rules_key and self._worth_probing(wanted)):
            return None
        # A copy: the walk updates the listings, and the child's answers hold only if every folder it took
        # as real still is one (see :meth:`scan`).
        share = walk_share(len(wanted), len(listings.folders))
        return StatProbe.start(wanted[share:], prefix, self.cache.entries, listings.folders.copy())

    def _share_with_probe(
        self, wanted: list[str], known: Mapping[str, os.stat_result], early: StatProbe | None, prefix: str
    ) -> tuple[StatProbe | None, list[str], list[str], bool]:
        """How a scan shares its paths with a stat-probe child (core/stat_probe.py): ``(probe, mine,
        theirs, in_order)`` -- the paths this process checks, those the child answers for, and whether
        checking ``mine`` then ``theirs`` keeps the order of ``wanted``."""
        if early is not None:
            # Every folder the child, started before the walk, took as real still is one: it checked the
            # paths after the first share meanwhile, and this process checks that share now.
            share = len(wanted) - early.count
            return early, wanted[:share], wanted[share:], True
        if not self._worth_probing(wanted):
            return None, wanted, [], True
        # A child checks half of the paths the walk did not stat, meanwhile; usually the walk stat-ed none.
        pool = [rel for rel in wanted if rel not in known] if known else wanted
        half = len(pool) // 2
        probe = StatProbe.start(pool[half:], prefix, self.cache.entries, self._real_folders)
        if probe is None:
            return None, wanted, [], True
        theirs = pool[half:]
        if not known:
            return probe, wanted[:half], theirs, True
        kept = set(theirs)
        return probe, [rel for rel in wanted if rel not in kept], theirs, False

    def hashed_signatures(self, digests: Mapping[str, str]) -> dict[str, tuple[int, int, int, int]]:
        """``(device, inode, size, mtime_ns)`` at which each path's digest (``digests``) was computed, from
        the stat cache; a path whose cached digest differs, or whose signature is too recent to trust
        (the racy-clean rule the cache applies when saved), is left out."""
        entries = self.cache.entries
        limit = self.cache.scan_start_ns - racy_margin(entries.values())
        signatures: dict[str, tuple[int, int, int, int]] = {}
        for rel, digest in digests.items():
            entry = entries.get(rel)
            if entry is None or entry[3] >= limit or f"{self.cache.algorithm}:{entry[4]}" != digest:
                continue
            signatures[rel] = (entry[0], entry[1], entry[2], entry[3])
        return signatures

    def scan(
        self,
        hasher: Hasher,
        *,
        paths: Iterable[str] | None = None,
        include_untracked: bool = False,
        threads: int | None = None,
        progress: Callable[[], ProgressSink] | None = None,
    ) -> Scan:
        """Digest every tracked file (or ``paths``): stat cache first, threads for the rest. Phases:
        :meth:`_walk_for_scan` (with the untracked files: one walk that stats the tracked ones on the way,
        a stat-probe child beside it), :meth:`_check_files` (the stat cache's answers; what it cannot
        answer becomes a hash job), :meth:`_hash_jobs`, and the :class:`Scan` put together."""
        self.cache.use_algorithm(hasher.algorithm)
        wanted = list(self.tracked() if paths is None else paths)
        prefix = str(self.project.root) + os.sep
        walked, early = self._walk_for_scan(wanted, prefix) if include_untracked else (None, None)
        checked = self._check_files(wanted, walked.stats if walked is not None else {}, early, prefix, hasher.algorithm)
        self._hash_jobs(checked, hasher, threads, progress)
        if paths is None:
            self.cache.forget(self.tracked())
        files, jobs = checked.files, checked.jobs
        scan = Scan(
            hasher.algorithm,
            files if not jobs and checked.in_order and is_sorted(wanted) else dict(sorted(files.items())),
            checked.missing,
            checked.skipped,
            hashed_files=len(jobs),
            hashed_bytes=sum(job.size for job in jobs),
        )
        if walked is not None:
            tracked_list = self.tracked()
            tracked = set(wanted) if tracked_list == wanted else set(tracked_list)  # usually the same paths
            scan.untracked = [rel for rel in walked.files if rel not in tracked]
            scan.unbundlable = sorted((rel, why) for rel, why in walked.skipped if rel not in tracked)
        return scan

    def _walk_for_scan(self, wanted: list[str], prefix: str) -> tuple[WalkResult, StatProbe | None]:
        """One pass over the tree lists the untracked files and stats the tracked ones on the way, while a
        stat-probe child checks the rest against the cache (its answers are dropped when a folder it took
        as real is not one any more)."""
        walked: WalkResult | None = None
        early = self._probe_during_walk(wanted, prefix)
        try:
            walked = self.walk(want=set(wanted))
        finally:
            if early is not None and (walked is None or not _folders_still_real(early.real_folders, walked)):
                early.collect()  # a folder the child took as real is gone or a symlink now: drop its answers
                early = None
        return walked, early

    def _check_files(
        self,
        wanted: list[str],
        known: dict[str, os.stat_result],
        early: StatProbe | None,
        prefix: str,
        algorithm: str,
    ) -> _Checked:
        """Each wanted path against the stat cache: a matching signature keeps its digest, anything else
        becomes a hash job (or is missing, or skipped with the reason)."""
        root = str(self.project.root)
        root_real = os.path.realpath(root)
        entries = self.cache.entries
        files: dict[str, FileInfo] = {}
        missing: list[str] = []
        skipped: list[tuple[str, str]] = []
        jobs: list[HashJob] = []
        new_info = FileInfo._make  # a tenth of the cost of calling the class, once per tracked file
        prefix_digest = f"{algorithm}:"
        # Folders a walk went through (this scan's, or the one ``add`` made to find the files) are real
        # folders of the project, never reached through a symlink: no lstat per folder to check that.
        checked_parents: dict[str, bool] = dict.fromkeys(self._real_folders, True)
        # Locals and inlined tests below: this loop runs once per tracked file on every status.
        known_get = known.get if known else None
        lstat = os.lstat
        s_ifmt, s_ifreg = FILE_TYPE_BITS, stat_module.S_IFREG
        probe, mine, theirs, in_order = self._share_with_probe(wanted, known, early, prefix)

        def to_check() -> Iterator[str]:
            """The paths to check here, in order: mine, then those of the child's it was unsure of (its
            sure answers go straight into ``files``, in their place in the order)."""
            yield from mine
            if probe is None:
                return
            modes = probe.collect()
            if modes is None:
                yield from theirs
                return
            for rel, mode in zip(theirs, modes, strict=True):
                if mode == ASK_AGAIN:
                    yield rel
                else:
                    entry = entries[rel]
                    files[rel] = new_info((rel, entry[2], mode, prefix_digest + entry[4]))

        try:
            for rel in to_check():
                st = known_get(rel) if known_get is not None else None
                if st is None:
                    slash = rel.rfind("/")
                    if slash > 0:
                        # a dict hit for every folder the walk went through; the function for the others
                        real_parent = checked_parents.get(rel[:slash])
                        if real_parent is None:
                            real_parent = _real_parent_ok(root, rel[:slash], checked_parents)
                        if not real_parent:
                            skipped.append((rel, "path goes through a symlinked folder"))
                            continue
                    try:
                        st = lstat(prefix + rel)
                    except FileNotFoundError:
                        missing.append(rel)
                        continue
                    except OSError as exc:
                        skipped.append((rel, exc.strerror or str(exc)))
                        continue
                link = False
                if st.st_mode & s_ifmt != s_ifreg:
                    absolute = prefix + rel
                    if stat_module.S_ISLNK(st.st_mode):
                        reason = symlink_verdict(root_real, absolute)
                        if reason:
                            skipped.append((rel, reason))
                            continue
                        st = os.stat(absolute)
                        link = True
                    else:
                        skipped.append((rel, "not a regular file"))
                        continue
                entry = entries.get(rel)  # hashing.holds, inlined: this loop runs once per tracked file
                if (
                    entry is not None
                    and entry[2] == st.st_size
                    and entry[3] == st.st_mtime_ns
                    and entry[1] == st.st_ino
                    and entry[0] == st.st_dev
                ):
                    files[rel] = new_info((rel, st.st_size, st.st_mode & 0o7777, prefix_digest + entry[4]))
                else:
                    seen = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
                    jobs.append(HashJob(rel, prefix + rel, st.st_size, seen, link))
        finally:
            if probe is not None and not probe.collected:
                probe.collect()  # reap the child when the loop ended early
        return _Checked(files, missing, skipped, jobs, in_order)

    def _hash_jobs(
        self, checked: _Checked, hasher: Hasher, threads: int | None, progress: Callable[[], ProgressSink] | None
    ) -> None:
        """Hash what the cache could not answer, on threads; each digest goes to the scan and the cache."""
        files, algorithm = checked.files, hasher.algorithm

        def done(job: HashJob, st: os.stat_result, hexdigest: str) -> None:
            self.cache.store(job.rel, st, hexdigest)
            files[job.rel] = FileInfo(job.rel, st.st_size, st.st_mode & 0o7777, format_digest(algorithm, hexdigest))

        jobs = checked.jobs
        hash_files(
            jobs,
            hasher,
            threads=threads or default_threads(),
            on_done=done,
            progress=progress() if (progress and jobs) else None,
        )


class _Checked(NamedTuple):
    """What :meth:`Workspace._check_files` found: files the cache answered for, missing and skipped paths,
    the files still to hash, and whether ``files`` is in the order of the paths asked for."""

    files: dict[str, FileInfo]
    missing: list[str]
    skipped: list[tuple[str, str]]
    jobs: list[HashJob]
    in_order: bool


#: Measured per item on this machine kind, in microseconds: the probe child's check of a path (an
#: ``lstat`` and a comparison), the parent's check of one (the same, and its ``FileInfo``), and the walk
#: of a folder whose listing is cached (an ``lstat``, the names turned into paths). Only the ratios matter.
CHILD_CHECK_US, PARENT_CHECK_US, CACHED_FOLDER_US = 2.9, 3.5, 2.9


def walk_share(paths: int, folders: int) -> int:
    """How many of ``paths`` the parent checks itself after walking ``folders`` cached folders, so that it
    and the probe child, which checks the rest meanwhile, finish together (none when the walk alone
    takes as long as the child's checks; never more than half)."""
    balanced = (CHILD_CHECK_US * paths - CACHED_FOLDER_US * folders) / (CHILD_CHECK_US + PARENT_CHECK_US)
    return max(0, min(paths // 2, int(balanced)))


def _folders_still_real(assumed: Collection[str], walked: WalkResult) -> bool:
    """Whether every folder in ``assumed`` (those a stat-probe child took as real: the folder-listing
    cache's when it started) is a real folder of this walk. Always so when the walk read no folder
    again; otherwise -- a new file somewhere, a folder that was racy -- checked folder by folder."""
    if not walked.listed:
        return True
    real = set(walked.folders)
    return all(folder in real for folder in assumed)


def _real_parent_ok(root: str, parent_rel: str, checked: dict[str, bool]) -> bool:
    """True when ``parent_rel`` is a real folder of the project (no symlinked folder on the way).

    One ``lstat`` per distinct folder, memoised in ``checked``: a folder is real when its parent is and it
    is not a symlink itself (``realpath`` per file would re-resolve every component every time). Iterative:
    a path of any depth (a hostile index can name 2,000 nested folders) costs no recursion.
    """
    verdict = checked.get(parent_rel)
    if verdict is not None:
        return verdict
    pending = [parent_rel]
    up = parent_rel.rpartition("/")[0]
    while up and up not in checked:
        pending.append(up)
        up = up.rpartition("/")[0]
    real = checked.get(up, True) if up else True
    for folder in reversed(pending):
        real = real and not os.path.islink(os.path.join(root, folder))
        checked[folder] = real
    return real


def default_threads() -> int:
    return max(2, min(8, os.cpu_count() or 2))


def tracked_text(paths: Iterable[str]) -> str:
    """The tracked list as written: one path per line, every line ending in a newline; an empty list is
    one empty line, so that a file truncated to nothing is told apart from an empty list."""
    text = "".join(f"{p}\n" for p in paths)
    return text or "\n"


def _parse_tracked_lines(text: str) -> list[str]:
    # split("\n"), not splitlines(): a name may hold U+2028 or U+0085, which splitlines() breaks lines at
    return [line for line in text.split("\n") if line]


def _validate_tracked(path: Path) -> bool:
    """Every line a valid project-relative path (the rule of :func:`core.paths.invalid_reason`, which the
    pydantic ``RelPath`` type applies too), no duplicates; UTF-8 without a byte order mark, ``\\n`` line
    ends, and a last line that ends in one (the tool always writes it: a file cut short does not). Checked
    line by line, without pydantic: the list can hold tens of thousands of paths and a line number is the
    useful answer."""
    text = read_text(path, what="tracked list", exact=True)
    if text.startswith("\ufeff"):
        raise ConfigError(f"{path}: starts with a byte order mark (U+FEFF); the tracked list is plain UTF-8")
    if "\r" in text:
        line = text.count("\n", 0, text.index("\r")) + 1
        raise ConfigError(f"{path}, line {line}: carriage return (CRLF line ends); the tracked list uses \\n only")
    if text and not text.endswith("\n"):
        raise ConfigError(
            f"{path}, line {text.count(chr(10)) + 1}: the last line has no newline: the file looks truncated",
            hint="restore it, or check the last path and end it with a newline",
        )
    seen: set[str] = set()
    for number, rel in enumerate(text.split("\n"), 1):
        if not rel:
            continue
        reason = invalid_reason(rel)
        if reason:
            raise ConfigError(f"{path}, line {number}: {rel!r}: {reason}")
        if rel in seen:
            raise ConfigError(f"{path}, line {number}: duplicate path {rel!r}")
        seen.add(rel)
    return True


def _validate_state(path: Path) -> bool:
    from modelops_bundle.core.schemas import SyncStateSchema
    from modelops_bundle.core.validation import validate

    data = parse_json(read_text(path, what="sync state"), path)
    from modelops_bundle.core.legacy_formats import refuse, state_markers

    markers = state_markers(data)
    if markers:  # written by v0.1.1: 'mops bundle migrate' converts it
        raise refuse(path, markers)
    validate(SyncStateSchema, data, path)
    return True
