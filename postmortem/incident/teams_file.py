"""Reading the teams file (TOML, named by POSTMORTEM_TEAMS_FILE) into a `TeamsConfig`.

The file is checked once at start-up; an error names the file, the key and its line, found by
reading the TOML text again line by line (tomllib itself reports positions only for syntax errors).
What the tables mean is `teams.py`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from postmortem.incident.teams import ServiceEntry, TeamsConfig, TeamTable, checked_email
from postmortem.models import Language, TemplateVariant

__all__ = ["TeamsFileError", "load_teams_file", "parse_teams"]

RESERVED = {"default", "services", "people", "slack_users", "tracker_users"}


class TeamsFileError(ValueError):
    """The teams file cannot be read or is wrong; the message says where."""


def load_teams_file(
    path: Path | None,
    *,
    language: Language = Language.EN,
    template: TemplateVariant = TemplateVariant.AUTO,
    timezone: str = "UTC",
    **globals_: Any,
) -> TeamsConfig:
    if path is None:
        return TeamsConfig(language=language, template=template, timezone=timezone, **globals_)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TeamsFileError(f"{path}: cannot read the teams file: {exc.strerror or exc}") from exc
    return parse_teams(text, str(path), language=language, template=template, timezone=timezone, **globals_)


def parse_teams(
    text: str,
    filename: str = "teams.toml",
    *,
    language: Language = Language.EN,
    template: TemplateVariant = TemplateVariant.AUTO,
    timezone: str = "UTC",
    **globals_: Any,
) -> TeamsConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        near = _near(text, str(exc))
        raise TeamsFileError(f"{filename}: not valid TOML: {exc}{near}") from exc
    lines = text.splitlines()

    def validated(model: type[BaseModel], value: Any, path: tuple[str, ...]) -> Any:
        if not isinstance(value, dict):
            raise TeamsFileError(f"{filename}, line {_line_of(lines, path)}: [{'.'.join(path)}] must be a table")
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            key_path = path + tuple(str(part) for part in error["loc"])
            raise TeamsFileError(
                f"{filename}, line {_line_of(lines, key_path)}: {'.'.join(key_path)}: {error['msg']}"
            ) from exc

    default = validated(TeamTable, data.get("default", {}), ("default",))
    services_table = data.get("services", {})
    if not isinstance(services_table, dict):
        raise TeamsFileError(f"{filename}, line {_line_of(lines, ('services',))}: services must be a table")
    services = {name: validated(ServiceEntry, entry, ("services", name)) for name, entry in services_table.items()}
    people_table = data.get("people", {})
    if not isinstance(people_table, dict):
        raise TeamsFileError(f"{filename}, line {_line_of(lines, ('people',))}: people must be a table")
    people: dict[str, str] = {}
    for person, email in people_table.items():
        try:
            people[person] = checked_email(str(email)) if isinstance(email, str) else checked_email("")
        except ValueError as exc:
            raise TeamsFileError(
                f"{filename}, line {_line_of(lines, ('people', person))}: people.{person}: {exc}"
            ) from exc
    slack_table = data.get("slack_users", {})
    if not isinstance(slack_table, dict) or not all(isinstance(v, str) and v for v in slack_table.values()):
        raise TeamsFileError(
            f"{filename}, line {_line_of(lines, ('slack_users',))}: slack_users maps emails to "
            'Slack member ids (strings like "U012AB3CDE")'
        )
    tracker_table = data.get("tracker_users", {})
    if not isinstance(tracker_table, dict) or not all(isinstance(v, str) and v for v in tracker_table.values()):
        raise TeamsFileError(
            f"{filename}, line {_line_of(lines, ('tracker_users',))}: tracker_users maps owners "
            "(emails or names) to tracker accounts (strings)"
        )
    teams = {name: validated(TeamTable, table, (name,)) for name, table in data.items() if name not in RESERVED}
    return TeamsConfig(
        default=default,
        teams=teams,
        services=services,
        people=people,
        slack_users=slack_table,
        tracker_users=tracker_table,
        language=language,
        template=template,
        timezone=timezone,
        **globals_,
    )


def _near(text: str, message: str) -> str:
    """tomllib names the line; quoting it shows the key the mistake is in."""
    match = re.search(r"at line (\d+)", message)
    if not match:
        return ""
    lines = text.splitlines()
    index = int(match.group(1)) - 1
    return f": {lines[index].strip()!r}" if 0 <= index < len(lines) else ""


def _single_path(line: str) -> tuple[str, ...] | None:
    """The key path of one TOML line on its own (`[a."b c"]  # x` → ('a', 'b c')), parsed by tomllib."""
    try:
        parsed: object = tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(parsed, dict) and len(parsed) == 1:
        key, parsed = next(iter(parsed.items()))
        path.append(key)
    return tuple(path) or None


def _line_of(lines: list[str], path: tuple[str, ...]) -> int:
    """The line of a dotted key: inside the deepest table header that is a prefix of it."""
    best_line, best_depth = 0, -1
    current_table: tuple[str, ...] = ()
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            current_table = _single_path(stripped) or ()
            depth = len(current_table)
            if path[:depth] == current_table and depth > best_depth:
                best_line, best_depth = number, depth
            continue
        if "=" not in stripped or stripped.startswith("#"):
            continue
        key = _single_path(stripped) or (stripped.split("=", 1)[0].strip().strip('"'),)
        full = current_table + key
        depth = len(full)
        if path[:depth] == full[: len(path)] and depth > best_depth:
            best_line, best_depth = number, depth
    return best_line or 1
