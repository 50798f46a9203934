"""Per-team configuration: what a team table may hold, and how an incident finds its team's settings.

`[default]` holds what every team inherits, `[services]` maps a source's service (by name or id) to
its team and owners, and every other table is a team keyed by its name or id in the source. A key
a team leaves out falls back to `[default]`, then to the global setting. Reading the TOML file named
by POSTMORTEM_TEAMS_FILE, with errors that name the file, the key and its line, is `teams_file.py`.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from postmortem.meeting.models import Attendee, MeetingPolicy
from postmortem.models import Incident, Language, PolicyOutcome, Severity, TemplateVariant
from postmortem.timezones import validate_timezone

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-3]|24):([0-5]\d)$")


class PolicyConfig(BaseModel):
    """When a post-mortem is required, and which template it gets."""

    model_config = ConfigDict(extra="forbid")

    full_at_or_above: Severity = Severity.SEV2
    full_if_high_urgency: bool = True
    full_after_minutes: int = Field(default=60, ge=0)
    full_if_flagged: bool = True
    otherwise: PolicyOutcome = PolicyOutcome.LIGHTWEIGHT


class _PartialPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_at_or_above: Severity | None = None
    full_if_high_urgency: bool | None = None
    full_after_minutes: int | None = Field(default=None, ge=0)
    full_if_flagged: bool | None = None
    otherwise: PolicyOutcome | None = None


def checked_email(value: str) -> str:
    """The address stripped, when it looks like one; a ValueError that says so otherwise."""
    value = value.strip()
    if "@" not in value or value.startswith("@") or value.endswith("@") or " " in value:
        raise ValueError(f"{value!r} is not an email address")
    return value


class TeamTable(BaseModel):
    """One team table of the file (and `[default]`): every key optional, so layers can fall back."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    language: Language | None = None
    template: TemplateVariant | None = None
    timezone: str | None = None
    policy: _PartialPolicy = Field(default_factory=_PartialPolicy)
    working_days: list[str] | None = None
    working_hours: str | None = None
    meeting_minutes: int | None = Field(default=None, ge=15, le=480)
    sev1_meeting_minutes: int | None = Field(default=None, ge=15, le=480)
    attendees: list[str] | None = None
    organizer: str | None = None
    slack_channel: str | None = None
    remind_submit_hours: int | None = Field(default=None, ge=1)
    remind_reviewers_hours: int | None = Field(default=None, ge=1)
    publish_deadline_days: int | None = Field(default=None, ge=1)
    tracker: Literal["jira", "github", "linear"] | None = None
    narrative_redact: bool | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return validate_timezone(value) if value is not None else None

    @field_validator("working_days")
    @classmethod
    def _days(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        days = [day.strip().lower()[:3] for day in value]
        unknown = [original for original, day in zip(value, days, strict=True) if day not in DAYS]
        if unknown or not days:
            raise ValueError(f"working days must be names like Mon, Tue … Sun; got {unknown or value}")
        return days

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = HOURS.match(value.strip())
        if not match or (int(match[3]), int(match[4])) <= (int(match[1]), int(match[2])):
            raise ValueError(f'working hours must look like "09:00-17:00" with the end after the start; got {value!r}')
        return value.strip()

    @field_validator("attendees")
    @classmethod
    def _attendees(cls, value: list[str] | None) -> list[str] | None:
        return [checked_email(item) for item in value] if value is not None else None

    @field_validator("organizer")
    @classmethod
    def _organizer(cls, value: str | None) -> str | None:
        return checked_email(value) if value is not None else None


class ServiceEntry(BaseModel):
    """One entry of `[services]`: the service's team, owners and Alertmanager labels."""

    model_config = ConfigDict(extra="forbid")

    team: str | None = None
    owners: list[str] = Field(default_factory=list)
    alert_labels: dict[str, str] = Field(default_factory=dict, description="Alertmanager labels that mean this service")


class TeamSettings(BaseModel):
    """Everything a post-mortem needs to know about its team, with every fallback applied."""

    team: str | None = None
    language: Language
    template: TemplateVariant
    timezone: str
    policy: PolicyConfig
    owners: list[str] = Field(default_factory=list)
    meeting: MeetingPolicy = Field(default_factory=MeetingPolicy)
    attendees: list[str] = Field(default_factory=list, description="the team's extra (optional) attendees")
    organizer: str | None = None
    responders: list[Attendee] = Field(default_factory=list, description="responders we know an email for")
    people: dict[str, str] = Field(default_factory=dict, description="the teams file's [people]: id or name → email")
    slack_channel: str | None = None
    slack_users: dict[str, str] = Field(default_factory=dict, description="email → Slack member id, for mentions")
    tracker: str | None = None
    tracker_users: dict[str, str] = Field(default_factory=dict, description="owner → tracker account")
    follow_up_days: list[int] = Field(default_factory=lambda: [30, 60, 90])
    remind_submit_hours: int = 48
    remind_reviewers_hours: int = 24
    publish_deadline_days: int = 14
    alert_matchers: list[dict[str, str]] = Field(default_factory=list)
    gather_deadline_seconds: int = 300
    gather_heartbeat_seconds: int = 60
    # The optional model step (POSTMORTEM_LLM_URL): whether it runs, and whether what it is sent goes
    # through the public summary's redaction first (the team's `narrative_redact`).
    narrative: bool = False
    narrative_redact: bool = False
    # What the worker can reach, set by resolve_team like `narrative`: the evidence sources it has no
    # settings for (source → the settings it lacks) and the invite channels it can send on. A draft
    # schedules nothing for the others (patch "lean-draft"); None (histories from before): everything.
    unreachable_sources: dict[str, str] | None = None
    invite_channels: list[str] | None = None


class TeamsConfig:
    def __init__(
        self,
        *,
        default: TeamTable | None = None,
        teams: dict[str, TeamTable] | None = None,
        services: dict[str, ServiceEntry] | None = None,
        people: dict[str, str] | None = None,
        slack_users: dict[str, str] | None = None,
        tracker_users: dict[str, str] | None = None,
        tracker: str | None = None,
        follow_up_days: list[int] | None = None,
        language: Language = Language.EN,
        template: TemplateVariant = TemplateVariant.AUTO,
        timezone: str = "UTC",
        gather_deadline_seconds: int = 300,
        gather_heartbeat_seconds: int = 60,
    ) -> None:
        self._gather = (gather_deadline_seconds, gather_heartbeat_seconds)
        self._default = default or TeamTable()
        self._teams = teams or {}
        self._teams_by_name = {key.casefold(): key for key in self._teams} | {
            table.name.casefold(): key for key, table in self._teams.items() if table.name
        }
        self._services = services or {}
        self._services_by_name = {key.casefold(): key for key in self._services}
        self._people = {key.casefold(): email for key, email in (people or {}).items()}
        self._slack_users = {email.casefold(): member for email, member in (slack_users or {}).items()}
        self._tracker_users = {owner.casefold(): account for owner, account in (tracker_users or {}).items()}
        self._tracker = tracker
        self._follow_up_days = follow_up_days or [30, 60, 90]
        self._globals = (language, template, timezone)

    def known_people(self) -> set[str]:
        """Every email the teams file names (casefolded): its people, attendees, organizers, owners, chat and tracker maps."""
        tables = [self._default, *self._teams.values()]
        emails = [
            *self._people.values(),
            *self._slack_users,
            *self._tracker_users,
            *(email for table in tables for email in (table.attendees or [])),
            *(table.organizer for table in tables if table.organizer),
            *(owner for entry in self._services.values() for owner in entry.owners),
        ]
        return {email.casefold() for email in emails if "@" in email}

    def team_key_for(self, incident: Incident) -> tuple[str | None, list[str]]:
        """The team table that applies (by the incident's teams, then its services) and the owners."""
        owners: list[str] = []
        service_team: str | None = None
        for entry in self._service_entries(incident):
            owners.extend(owner for owner in entry.owners if owner not in owners)
            service_team = service_team or entry.team
        for team in incident.teams:
            key = self._lookup_key(self._teams, self._teams_by_name, team.id, team.name)
            if key is not None:
                return key, owners
        if service_team is not None:
            key = self._lookup_key(self._teams, self._teams_by_name, service_team, service_team)
            return key or service_team, owners
        return (incident.teams[0].name if incident.teams else None), owners

    def _service_entries(self, incident: Incident) -> list[ServiceEntry]:
        found = (self._lookup(self._services, self._services_by_name, s.id, s.name) for s in incident.services)
        return [entry for entry in found if entry is not None]

    def resolve(self, incident: Incident) -> TeamSettings:
        key, owners = self.team_key_for(incident)
        table = self._teams.get(key) if key else None
        settings = self.settings_for(key, table, owners)
        settings.alert_matchers = [e.alert_labels for e in self._service_entries(incident) if e.alert_labels]
        settings.responders = self._responders(incident)
        settings.people = dict(self._people)
        settings.slack_users = dict(self._slack_users)
        settings.tracker_users = dict(self._tracker_users)
        settings.tracker = settings.tracker or self._tracker
        settings.follow_up_days = list(self._follow_up_days)
        settings.gather_deadline_seconds, settings.gather_heartbeat_seconds = self._gather
        return settings

    def _responders(self, incident: Incident) -> list[Attendee]:
        """People are known by email: a responder's own, or the [people] table's by id or name."""
        found: dict[str, Attendee] = {}
        for person in incident.responders:
            email = person.email or next(
                (self._people[k.casefold()] for k in (person.id, person.name) if k and k.casefold() in self._people),
                None,
            )
            if email and email.casefold() not in found:
                found[email.casefold()] = Attendee(email=email, name=person.name)
        return list(found.values())

    def settings_for(self, key: str | None, table: TeamTable | None, owners: list[str]) -> TeamSettings:
        layers = [layer for layer in (table, self._default) if layer is not None]
        language, template, timezone = self._globals

        def pick(field: str, fallback: Any, of: Any = lambda layer: layer) -> Any:
            return next((value for layer in layers if (value := getattr(of(layer), field)) is not None), fallback)

        policy = {field: pick(field, None, lambda layer: layer.policy) for field in PolicyConfig.model_fields}
        hours = pick("working_hours", None)
        start_hours = end_hours = None
        if hours:
            match = HOURS.match(hours)
            assert match is not None
            start_hours = time(int(match[1]), int(match[2]))
            end_hours = time(23, 59) if match[3] == "24" else time(int(match[3]), int(match[4]))
        defaults = MeetingPolicy()
        meeting = MeetingPolicy(
            timezone=pick("timezone", timezone),
            working_days=[DAYS.index(day) for day in pick("working_days", None) or []] or defaults.working_days,
            working_hours=(start_hours, end_hours) if start_hours and end_hours else defaults.working_hours,
            meeting_minutes=pick("meeting_minutes", defaults.meeting_minutes),
            sev1_meeting_minutes=pick("sev1_meeting_minutes", defaults.sev1_meeting_minutes),
        )
        return TeamSettings(
            slack_channel=pick("slack_channel", None),
            tracker=pick("tracker", None),
            remind_submit_hours=pick("remind_submit_hours", 48),
            remind_reviewers_hours=pick("remind_reviewers_hours", 24),
            publish_deadline_days=pick("publish_deadline_days", 14),
            narrative_redact=pick("narrative_redact", False),
            meeting=meeting,
            attendees=pick("attendees", []),
            organizer=pick("organizer", None),
            team=(table.name if table and table.name else key),
            language=pick("language", language),
            template=pick("template", template),
            timezone=pick("timezone", timezone),
            policy=PolicyConfig(**{k: v for k, v in policy.items() if v is not None}),
            owners=owners,
        )

    @staticmethod
    def _lookup_key(tables: dict[str, Any], by_name: dict[str, str], ident: str | None, name: str | None) -> str | None:
        if ident and ident in tables:
            return ident
        if name and name in tables:
            return name
        if name and name.casefold() in by_name:
            return by_name[name.casefold()]
        return None

    @classmethod
    def _lookup(cls, tables: dict[str, Any], by_name: dict[str, str], ident: str | None, name: str | None) -> Any:
        key = cls._lookup_key(tables, by_name, ident, name)
        return tables.get(key) if key else None
