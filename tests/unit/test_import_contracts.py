"""The dependency rule of ARCHITECTURE.md, checked on the source: every import of ours, module-level or
inside a function, read with `ast` (nothing is imported, so a forbidden arrow cannot hide behind a
lazy import or an import cycle).

- integrations/ import nothing of ours but models (`postmortem.models`, `postmortem.*.models`,
  `postmortem.timezones`) and each other;
- activities/ never import webhooks/, the API or the app shell;
- webhooks/ never import activities/ or integrations/ (they may use the domain, the models and the
  store: the inbox of deliveries will live there);
- workflows/ import only each other, activity signatures and inputs, and the pure domain;
- the domain (models, timezones, incident, evidence, report, review, meeting, …) imports no store,
  API, app, activity, workflow, webhook or integration.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
ROOT = "postmortem"
# Layers that are not the domain: `postmortem.<name>` and everything under it.
OUTER = ("store", "api", "app", "web", "activities", "workflows", "webhooks", "integrations")


@dataclass(frozen=True, order=True)
class Arrow:
    """One import of ours that the rule forbids: `importer` (file:line) imports `imported`."""

    path: str
    line: int
    importer: str
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} → {self.imported}"


def package_roots(repository: Path = REPOSITORY) -> dict[Path, str]:
    """Source folder → import name, as pyproject installs them (postmortem/ plus the root folders)."""
    with (repository / "pyproject.toml").open("rb") as file:
        package_dir: dict[str, str] = tomllib.load(file)["tool"]["setuptools"]["package-dir"]
    roots = {repository / ROOT: ROOT}
    roots.update({repository / folder: name for name, folder in package_dir.items()})
    return roots


def layer(module: str) -> str:
    """The layer of one of our modules: one of OUTER, or "domain" for the rest of `postmortem`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in OUTER else "domain"


def is_models(module: str) -> bool:
    """Plain data the integrations may share: postmortem.models, postmortem.<pkg>.models, timezones."""
    parts = module.split(".")
    return module in (f"{ROOT}.models", f"{ROOT}.timezones") or (
        len(parts) == 3 and parts[2] == "models" and layer(module) == "domain"
    )


def allowed(importer: str, imported: str) -> bool:
    source, target = layer(importer), layer(imported)
    if source == "integrations":
        return target == "integrations" or is_models(imported)
    if source == "activities":
        return target not in ("webhooks", "api", "app", "web")
    if source == "webhooks":
        return target not in ("activities", "integrations")
    if source == "workflows":
        return target in ("workflows", "activities", "domain")
    if source == "domain":
        return target == "domain"
    return True  # store, api, app and web sit on top: the rule says nothing about what they import


def modules(roots: Mapping[Path, str]) -> dict[str, Path]:
    """Module name → file, for every .py under the roots."""
    found: dict[str, Path] = {}
    for folder, name in roots.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([name, *parts])] = path
    return found


def imports(module: str, path: Path, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, imported module) for each import of `postmortem…` in the file, wherever it stands."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # `from postmortem import models` imports the module postmortem.models
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if candidate in known else base


def forbidden_arrows(roots: Mapping[Path, str], relative_to: Path | None = None) -> list[Arrow]:
    found = modules(roots)
    known = set(found)
    arrows = []
    for module, path in found.items():
        for line, imported in imports(module, path, known):
            if imported.split(".")[0] != ROOT or allowed(module, imported):
                continue
            shown = path.relative_to(relative_to) if relative_to else path
            arrows.append(Arrow(str(shown), line, module, imported))
    return sorted(arrows)


def test_the_tree_keeps_the_dependency_rule() -> None:
    roots = package_roots()
    assert set(roots.values()) >= {ROOT, *(f"{ROOT}.{name}" for name in ("workflows", "activities", "webhooks"))}
    arrows = forbidden_arrows(roots, REPOSITORY)
    assert not arrows, "imports against the dependency rule (ARCHITECTURE.md):\n" + "\n".join(map(str, arrows))


def test_every_source_folder_is_read() -> None:
    found = modules(package_roots())
    for module in (
        "postmortem.models",
        "postmortem.store.store",
        "postmortem.workflows.postmortem_workflow",
        "postmortem.activities.tickets",
        "postmortem.webhooks.router",
        "postmortem.integrations.jira",
    ):
        assert module in found


def synthetic_tree(tmp_path: Path) -> dict[Path, str]:
    """A miniature of our layout: one integration and one domain module that break the rule, one that keeps it."""
    files = {
        "postmortem/__init__.py": "",
        "postmortem/models.py": "",
        "postmortem/meeting/__init__.py": "",
        "postmortem/meeting/models.py": "",
        "postmortem/meeting/invite.py": "from postmortem.models import Incident\n",
        "postmortem/report/__init__.py": "",
        "postmortem/report/redraft.py": (
            "async def load(pm_id):\n    from postmortem.store.evidence import EvidenceStore\n    return EvidenceStore\n"
        ),
        "integrations/__init__.py": "",
        "integrations/mail.py": (
            "from postmortem import models\n"
            "from postmortem.meeting.models import Meeting\n"
            "from postmortem.meeting import invite\n"
            "from . import good\n"
            "from .. import meeting\n"
        ),
        "integrations/good.py": "import httpx\nfrom postmortem.integrations.mail import send\n",
        "workflows/__init__.py": "",
        "workflows/flow.py": "import postmortem.app.settings\nfrom postmortem.meeting.models import Meeting\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return {
        tmp_path / "postmortem": "postmortem",
        tmp_path / "integrations": "postmortem.integrations",
        tmp_path / "workflows": "postmortem.workflows",
    }


def test_the_checker_catches_forbidden_arrows(tmp_path: Path) -> None:
    arrows = forbidden_arrows(synthetic_tree(tmp_path), tmp_path)
    assert [(a.path, a.line, a.importer, a.imported) for a in arrows] == [
        ("integrations/mail.py", 3, "postmortem.integrations.mail", "postmortem.meeting.invite"),
        # a relative import that climbs out of integrations/ is resolved like any other
        ("integrations/mail.py", 5, "postmortem.integrations.mail", "postmortem.meeting"),
        # function-level imports count as much as module-level ones
        ("postmortem/report/redraft.py", 2, "postmortem.report.redraft", "postmortem.store.evidence"),
        ("workflows/flow.py", 1, "postmortem.workflows.flow", "postmortem.app.settings"),
    ]
    assert "integrations/mail.py:3: postmortem.integrations.mail → postmortem.meeting.invite" in map(str, arrows)


def test_the_layers() -> None:
    assert layer("postmortem.integrations.jira") == "integrations"
    assert layer("postmortem.incident.pagerduty") == "domain"
    assert layer("postmortem") == "domain"
    assert is_models("postmortem.meeting.models") and is_models("postmortem.timezones")
    assert not is_models("postmortem.store.models") and not is_models("postmortem.meeting.invite")
    assert allowed("postmortem.webhooks.router", "postmortem.store.store")
    assert not allowed("postmortem.webhooks.trackers", "postmortem.activities.tickets")
    assert allowed("postmortem.workflows.postmortem_workflow", "postmortem.activities.draft")
    assert not allowed("postmortem.workflows.postmortem_workflow", "postmortem.integrations.jira")
    assert not allowed("postmortem.activities.link", "postmortem.webhooks.pagerduty")
    assert allowed("postmortem.activities.link", "postmortem.integrations.pagerduty_api")
