"""Honest reports: what a push sent to blob storage, one unit system, files counted as files and blobs as
blobs, models named by id, ``-q`` listings for scripts, nested projects."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from modelops_bundle.cli.console import Console, DelayedProgress, human_bytes
from modelops_bundle.testing import BundleProject

MODEL = "from modelops_calabaria import BaseModel\n\n\nclass SEIR(BaseModel):\n    pass\n"
BIG = 3 * 1024 * 1024 + 512 * 1024  # 3.5 MiB


def blob_project(project: BundleProject) -> BundleProject:
    """Files of 1 MB or more go to the embedded environment's blob folder."""
    assert project.run("config", "storage.threshold_bytes", "1MB").ok
    project.write("data/big.bin", os.urandom(BIG))
    project.write("data/twin.bin", project.path("data/big.bin").read_bytes())  # same content: one object
    project.write("small.txt", "hello\n")
    assert project.run("add", ".").ok
    return project


def test_a_push_says_what_went_to_blob_storage(bundle_project: BundleProject) -> None:
    project = blob_project(bundle_project)
    blobs = Path(project.env["MODELOPS_HOME"]) / "blobs"

    dry = project.run("push", "--dry-run")
    assert dry.exit_code == 0, dry
    assert f"would upload 1 file (3.5 MiB) to blob storage (local folder {blobs}), 0 already present" in dry.stdout
    assert not any(path.is_file() for path in blobs.rglob("*"))  # a dry run sends nothing

    pushed = project.run("push")
    assert pushed.exit_code == 0, pushed
    lines = pushed.stdout.splitlines()
    registry = next(line for line in lines if "to the registry" in line)
    stored = next(line for line in lines if "to blob storage" in line)
    assert registry.strip().startswith("uploaded ") and "MiB" not in registry  # the small files only
    assert stored.strip() == f"uploaded 1 file (3.5 MiB) to blob storage (local folder {blobs}), 0 already present"
    assert sum(path.stat().st_size for path in blobs.rglob("*") if path.is_file()) >= BIG

    project.write("small.txt", "hello again\n")
    again = project.run("push", "--tag", "v2", "--json").json()
    assert again["blob_store"] == {
        "store": f"local folder {blobs}",
        "files": 2,
        "bytes": 2 * BIG,
        "uploaded_files": 0,
        "uploaded_bytes": 0,
        "already_present": 1,
    }
    assert again["uploaded_bytes"] < 100_000  # the registry got the small file and the index, not 3.5 MiB


def test_a_push_without_blob_storage_reports_no_blob_store(bundle_project: BundleProject) -> None:
    bundle_project.write("a.txt", "a\n")
    assert bundle_project.run("add", ".").ok
    pushed = bundle_project.run("push", "--json").json()
    assert pushed["blob_store"] is None
    assert "blob storage" not in bundle_project.run("push", "--tag", "v1").stdout


def test_one_unit_system() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1024, 1536, 3 * 1024**2, 5 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "3.0 MiB",
        "5.0 GiB",
    ]


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("unit", "expected"), [("files", "3/4 files"), ("blobs", "3/4 blobs")])
def test_progress_counts_in_its_unit_and_binary_bytes(
    monkeypatch: pytest.MonkeyPatch, unit: str, expected: str
) -> None:
    monkeypatch.setattr("modelops_bundle.cli.console.PROGRESS_DELAY_S", 0.0)
    out = FakeTTY()
    console = Console(stdout=out, stderr=io.StringIO(), environ={"TERM": "xterm", "NO_COLOR": "1"})
    progress = console.progress("uploading", unit)
    assert isinstance(progress, DelayedProgress)
    progress.start(4, 4 * 1024 * 1024)
    progress.advance(files=3, nbytes=3 * 1024 * 1024)
    rendered = progress._bar.get_renderable()  # what the terminal shows, drawn once more here
    capture = Console(stdout=FakeTTY(), environ={"TERM": "xterm", "NO_COLOR": "1"})._rich_console()
    with capture.capture() as captured:
        capture.print(rendered)
    progress.close()
    text = captured.get()
    assert expected in text
    assert "3.0/4.0 MiB" in text and " MB" not in text and "kB" not in text


def test_status_names_models_by_id_with_the_class(bundle_project: BundleProject) -> None:
    bundle_project.write("models/seir.py", MODEL)
    assert bundle_project.run("register-model", "models/seir.py", "--id", "flu").ok
    lines = bundle_project.run("status", "--offline").stdout.splitlines()
    header = lines.index("Registered Models (1)")
    assert lines[header + 1].split() == ["Model", "Class", "Status", "Dependencies", "Cloud"]
    assert lines[header + 2].split()[:3] == ["flu", "SEIR", "Ready"]
    bundle_project.write("models/seir.py", MODEL + "RATE = 2\n")
    assert bundle_project.run("add", ".").ok
    assert bundle_project.run("push", "--tag", "v1").ok
    bundle_project.write("models/seir.py", MODEL + "RATE = 3\n")
    diff = bundle_project.run("diff", "v1").stdout
    assert "  flu (SEIR): models/seir.py modified" in diff


def test_quiet_listings_print_bare_names(bundle_project: BundleProject) -> None:
    bundle_project.write("models/seir.py", MODEL)
    assert bundle_project.run("register-model", "models/seir.py").ok
    assert bundle_project.run("add", ".").ok
    assert bundle_project.run("push", "--tag", "v1").ok
    assert bundle_project.run("push", "--tag", "v2").ok
    assert bundle_project.run("tags", "-q").stdout.splitlines() == ["v1", "v2"]
    assert bundle_project.run("list", "-q").stdout == "seir_seir\n"
    assert bundle_project.run("env", "list", "-q").stdout == "local\n"
    plugins = bundle_project.run("plugins", "-q").stdout.splitlines()
    assert "storage" in plugins and all(" " not in name for name in plugins)
    assert bundle_project.run("status", "-q", "--offline").stdout == ""  # not a listing: quiet as ever


def test_init_inside_a_project_warns_and_the_outer_add_leaves_it_out(bundle_project: BundleProject) -> None:
    bundle_project.write("shared/notes.txt", "outer\n")
    inner = bundle_project.run("init", "sub/inner", "--json")
    assert inner.exit_code == 0, inner
    assert inner.json()["nested_in"] == str(bundle_project.root)
    assert f"is inside the project {bundle_project.root}: it is a nested project" in inner.stderr
    bundle_project.write("sub/inner/model.py", "x = 1\n")
    bundle_project.write("sub/plain.txt", "outer too\n")

    added = bundle_project.run("add", ".")
    assert added.exit_code == 0, added
    assert "skipped sub/inner: a nested modelops-bundle project" in added.stderr
    tracked = bundle_project.tracked()
    assert "sub/plain.txt" in tracked and "shared/notes.txt" in tracked
    assert not [rel for rel in tracked if rel.startswith("sub/inner/")]

    status = bundle_project.run("status", "--offline")
    assert "Not bundlable (1; 'mops bundle add' leaves these out):" in status.stdout
    assert "  sub/inner: a nested modelops-bundle project" in status.stdout
    as_json = bundle_project.run("status", "--offline", "--json").json()
    assert [item["path"] for item in as_json["unbundlable"]] == ["sub/inner"]
    assert "sub/inner/model.py" not in as_json["untracked"]

    # The inner project works on its own, and does not see itself as nested.
    inside = bundle_project.run("add", ".", cwd=bundle_project.root / "sub" / "inner")
    assert inside.exit_code == 0 and "skipped" not in inside.stderr
    inner_tracked = (bundle_project.root / "sub/inner/.modelops-bundle/tracked.txt").read_text().split()
    assert "model.py" in inner_tracked
    json.loads(bundle_project.run("status", "--offline", "--json", cwd=bundle_project.root / "sub" / "inner").stdout)


def test_a_folder_that_becomes_a_project_later_is_left_out_then(bundle_project: BundleProject) -> None:
    """The folder listing cache must not hide a nested project made after the folder was listed."""
    bundle_project.write("lab/a.txt", "a\n")
    first = bundle_project.run("status", "--offline", "--json").json()
    assert "lab/a.txt" in first["untracked"]
    assert bundle_project.run("init", "lab").exit_code == 0
    later = bundle_project.run("status", "--offline", "--json").json()
    assert "lab/a.txt" not in later["untracked"]
    assert [item["path"] for item in later["unbundlable"]] == ["lab"]
