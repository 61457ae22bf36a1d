"""The reliability suite (issue 7): faults, kills, corruption, hostile input, concurrency, secrets.

Every scenario records what it tried, how often and what came out through the ``trial`` fixture. When
``MOPS_RELIABILITY_REPORT=PATH`` is set, the session writes the collected rows as Markdown to ``PATH``
and as JSON next to it (``PATH`` with ``.json``); ``docs/reliability.md`` is generated from that file::

    MOPS_RELIABILITY_REPORT=build/reliability-report.md .venv/bin/pytest -q tests/reliability

A row's status is the outcome of the test that recorded it (passed / failed), so a failing scenario
shows as failed in the report instead of silently disappearing.

Property-based tests use :data:`PROPERTY` (derandomized, no deadline, a bounded number of examples),
so CI sees the same examples on every run.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.oci.registries import RunningRegistry, start_distribution
from tests.storage.conftest import (  # noqa: F401 - re-exported fixtures
    azurite_service,
    moto_auth_service,
    moto_service,
    services_dir,
)

#: Settings for every property-based test of the suite: the same examples on every run.
PROPERTY = settings(
    derandomize=True,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)

REPORT_ENV = "MOPS_RELIABILITY_REPORT"


@dataclass
class Row:
    """One line of the reliability table."""

    area: str  # faults | kills | integrity | hostile input | properties | concurrency | security
    scenario: str
    tried: str  # how often / how many (seeds, examples, kill points, fault injections)
    outcome: str
    test: str = ""
    status: str = "passed"
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


_ROWS: list[Row] = []


class Trial:
    """Records rows for the report; ``status`` is filled in from the test's result."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.rows: list[Row] = []
        self.started = time.monotonic()

    def record(self, area: str, scenario: str, tried: str | int, outcome: str, **details: Any) -> None:
        row = Row(area, scenario, str(tried), outcome, test=self.nodeid, details=details)
        self.rows.append(row)
        _ROWS.append(row)


@pytest.fixture
def trial(request: pytest.FixtureRequest) -> Iterator[Trial]:
    recorder = Trial(request.node.nodeid)
    request.node._reliability_trial = recorder
    yield recorder
    elapsed = time.monotonic() - recorder.started
    for row in recorder.rows:
        row.seconds = round(elapsed / max(1, len(recorder.rows)), 2)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    recorder: Trial | None = getattr(item, "_reliability_trial", None)
    if recorder is not None and report.failed:
        for row in recorder.rows:
            row.status = "FAILED"
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get(REPORT_ENV, "").strip()
    if not target or not _ROWS:
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [asdict(row) for row in _ROWS]
    meta = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "rows": len(rows),
        "failed": sum(1 for row in _ROWS if row.status != "passed"),
    }
    path.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    path.write_text(render_markdown(meta, _ROWS))


AREAS = ("faults", "kills", "integrity", "hostile input", "properties", "concurrency", "security")


def render_markdown(meta: dict[str, Any], rows: list[Row]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        f"Generated {meta['generated']} (Python {meta['python']}, {meta['machine']}): "
        f"{meta['rows']} scenarios, {meta['failed']} failed.",
        "",
    ]
    order = {area: number for number, area in enumerate(AREAS)}
    for area in sorted({row.area for row in rows}, key=lambda name: (order.get(name, 99), name)):
        lines += [
            f"### {area[:1].upper()}{area[1:]}",
            "",
            "| scenario | tried | outcome | status |",
            "|---|---|---|---|",
        ]
        for row in (r for r in rows if r.area == area):
            lines.append(f"| {cell(row.scenario)} | {cell(row.tried)} | {cell(row.outcome)} | {row.status} |")
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ servers


@pytest.fixture(scope="session")
def reliability_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A CNCF distribution registry for the suite (tests that kill a registry start their own)."""
    registry = start_distribution(tmp_path_factory.mktemp("reliability-registry"))
    yield registry
    registry.stop()
