"""Global settings: every one is an environment variable with the prefix POSTMORTEM_."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from postmortem.models import Language, TemplateVariant


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSTMORTEM_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    database_schema: str | None = None
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = "postmortem"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    pagerduty_webhook_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    opsgenie_webhook_token: str | None = None
    bootstrap_admin_token: str | None = None
    alertmanager_webhook_token: str | None = None
    alertmanager_service_labels: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["service"])
    alertmanager_margin_minutes: int = Field(default=30, ge=0)
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_api_token: str | None = None
    opsgenie_api_url: str = "https://api.opsgenie.com"
    opsgenie_api_key: str | None = None
    slack_api_url: str = "https://slack.com/api"
    slack_bot_token: str | None = None
    gather_deadline_seconds: int = Field(default=300, ge=0)
    gather_heartbeat_seconds: int = Field(default=60, ge=1)
    http_timeout_seconds: float = Field(default=15.0, gt=0)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_from: str = "postmortem@localhost"
    caldav_url: str | None = None
    caldav_username: str | None = None
    caldav_password: str | None = None
    video_url_template: str | None = None
    public_redact_patterns: Annotated[list[str], NoDecode] = Field(default_factory=list)
    tracker: Literal["jira", "github", "linear"] | None = None
    jira_url: str | None = None
    jira_email: str | None = None
    jira_api_token: str | None = None
    jira_project: str | None = None
    github_api_url: str = "https://api.github.com"
    github_token: str | None = None
    github_repo: str | None = None
    linear_api_url: str = "https://api.linear.app/graphql"
    linear_api_key: str | None = None
    linear_team_id: str | None = None
    github_webhook_secret: str | None = None
    jira_webhook_token: str | None = None
    linear_webhook_secret: str | None = None
    follow_up_days: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [30, 60, 90])
    teams_file: Path | None = None
    language: Language = Language.EN
    template: TemplateVariant = TemplateVariant.AUTO
    timezone: str = "UTC"
    log_level: str = "INFO"

    @field_validator(
        "pagerduty_webhook_secrets", "alertmanager_service_labels", "public_redact_patterns", mode="before"
    )
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("follow_up_days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        if isinstance(value, str):
            return sorted(int(part) for part in value.split(",") if part.strip())
        return value

    @field_validator(
        "pagerduty_api_url",
        "opsgenie_api_url",
        "slack_api_url",
        "caldav_url",
        "jira_url",
        "github_api_url",
        "linear_api_url",
    )
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http(s) base URL")
        return value.rstrip("/")

    @field_validator("video_url_template")
    @classmethod
    def _video_template(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format(postmortem_id="x", uid="x")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"video URL template may use {{postmortem_id}} and {{uid}} only: {exc}") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from postmortem.timezones import validate_timezone

        return validate_timezone(value)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'postmortem.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def normalise_database_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, sqlite:///) and pick the async drivers we ship."""
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
