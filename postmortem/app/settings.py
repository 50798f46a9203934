"""Global settings: one `Settings` in sections, every field an environment variable with the prefix POSTMORTEM_.

The sections (`postmortem.config`) keep the flat names the README documents (POSTMORTEM_SMTP_HOST,
POSTMORTEM_HTTP_TIMEOUT_SECONDS …): pydantic-settings' nested delimiter would rename them
(POSTMORTEM_SMTP__HOST), so the environment is read by `_FlatVariables`, which hands each section the
variables its fields name. Values given to `Settings(...)` win over the environment, section by section.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from postmortem.config import (
    AlertmanagerSettings,
    CalDavSettings,
    FollowUpSettings,
    GatherSettings,
    HttpSettings,
    InboxSettings,
    JsmSettings,
    LimitsSettings,
    LlmSettings,
    MeetingSettings,
    OidcSettings,
    OpsgenieSettings,
    PagerDutySettings,
    ReportSettings,
    Section,
    ServerSettings,
    SlackSettings,
    SmtpSettings,
    StoreSettings,
    TeamsFileSettings,
    TemporalSettings,
    TicketsSettings,
    WebSettings,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    pagerduty: PagerDutySettings = Field(default_factory=PagerDutySettings)
    opsgenie: OpsgenieSettings = Field(default_factory=OpsgenieSettings)
    jsm: JsmSettings = Field(default_factory=JsmSettings)
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    caldav: CalDavSettings = Field(default_factory=CalDavSettings)
    meeting: MeetingSettings = Field(default_factory=MeetingSettings)
    tickets: TicketsSettings = Field(default_factory=TicketsSettings)
    gather: GatherSettings = Field(default_factory=GatherSettings)
    inbox: InboxSettings = Field(default_factory=InboxSettings)
    follow_up: FollowUpSettings = Field(default_factory=FollowUpSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    teams: TeamsFileSettings = Field(default_factory=TeamsFileSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    oidc: OidcSettings = Field(default_factory=OidcSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _FlatVariables(settings_cls)


def _section(field: FieldInfo) -> type[Section] | None:
    annotation = field.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, Section) else None


def variables(section: type[Section] | type[Settings] = Settings) -> Iterator[str]:
    """Every environment variable a section (by default: all of them) reads, as documented."""
    for name, field in section.model_fields.items():
        inner = _section(field)
        if inner is not None:
            yield from variables(inner)
        else:
            assert issubclass(section, Section), name
            yield section.variable(name)


def _collect(section: type[Section] | type[Settings], environ: dict[str, str]) -> dict[str, Any]:
    """The values the environment sets for `section`: keyed by variable, nested sections by field name."""
    found: dict[str, Any] = {}
    for name, field in section.model_fields.items():
        inner = _section(field)
        if inner is not None:
            if values := _collect(inner, environ):
                found[name] = values
        else:
            assert issubclass(section, Section), name
            variable = section.variable(name)
            if variable.upper() in environ:
                found[variable] = environ[variable.upper()]
    return found


class _FlatVariables(PydanticBaseSettingsSource):
    """The process environment, matched case-insensitively as pydantic-settings does by default."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError("values come from __call__, section by section")

    def __call__(self) -> dict[str, Any]:
        environ = {name.upper(): value for name, value in os.environ.items()}
        return _collect(self.settings_cls, environ)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
