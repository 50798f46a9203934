"""The design card's root folders must import as `postmortem.*` from a built wheel, not only here."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support import REPO

CHECK = """
import asyncio, sys, tempfile
from pathlib import Path
root = Path(sys.argv[1])
import postmortem.workflows.postmortem_workflow, postmortem.activities.draft, postmortem.webhooks.router, postmortem.app.cli
import postmortem.integrations
for module in (postmortem.workflows.postmortem_workflow, postmortem.activities.draft, postmortem.webhooks.router):
    assert Path(module.__file__).is_relative_to(root), module.__file__
from postmortem.report.template_catalogue import builtin_templates
assert sorted(builtin_templates()) == ["en-full", "en-lightweight", "en-regulated", "en-status_page", "zh-full", "zh-lightweight", "zh-regulated", "zh-status_page"]
from postmortem.store.store import Store
async def main():
    with tempfile.TemporaryDirectory() as folder:
        store = await Store.open(f"sqlite+aiosqlite:///{folder}/x.db")
        await store.close()
asyncio.run(main())
print("ok")
"""


def test_wheel_maps_the_root_folders_under_one_import_root(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"postmortem"}  # no generic `workflows`/`webhooks` package in site-packages
    for expected in (
        "postmortem/workflows/postmortem_workflow.py",
        "postmortem/webhooks/pagerduty.py",
        "postmortem/activities/draft.py",
        "postmortem/report/templates/zh-full.toml",
        "postmortem/report/templates/report.md.j2",
        "postmortem/store/migrations/versions/0001_initial.py",
    ):
        assert expected in names, expected
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    run = subprocess.run(
        [sys.executable, "-c", CHECK, str(unpacked)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
