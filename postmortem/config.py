"""The service's configuration, in sections: one pydantic model per concern (a source, a tracker, SMTP …).

Each field is set by its own flat environment variable, its validation alias (POSTMORTEM_SMTP_HOST →
`SmtpSettings.host`): the sections group the code, they never rename what operators set. The models are
plain data (reading the environment is the shell's job: `postmortem.app.settings`), so activities take
the sections they need and a test builds exactly the section it means. Secrets are `SecretStr`: a repr,
a log line or a traceback shows `**********`; `reveal` hands the value to the client that sends it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AliasGenerator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

from postmortem.models import Language, TemplateVariant
from postmortem.timezones import validate_timezone

DEFAULT_PREFIX = "POSTMORTEM_"


def named(prefix: str) -> ConfigDict:
    """A section whose field `name` is the variable `<prefix><NAME>` (unless the field names its own)."""
    return ConfigDict(alias_generator=AliasGenerator(validation_alias=lambda name: f"{prefix}{name.upper()}"))


def reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _pattern_list(value: object) -> object:
    """Comma-separated, or a JSON array for patterns that hold a comma themselves (`INC-\\d{3,5}`)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON array of regular expressions: {exc}") from exc
    return _comma_list(value)


def _compiled(patterns: list[str]) -> list[str]:
    """Refused at start-up, naming the pattern, rather than failing every publish."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from exc
    return patterns


def _base_url(value: str) -> str:
    """Only operator-configured base URLs are ever called: they must at least be http(s)."""
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"{value!r} is not an http(s) base URL")
    return value.rstrip("/")


BaseUrl = Annotated[str, AfterValidator(_base_url)]
CommaList = Annotated[list[str], BeforeValidator(_comma_list)]
PatternList = Annotated[list[str], BeforeValidator(_pattern_list), AfterValidator(_compiled)]
TimeZone = Annotated[str, AfterValidator(validate_timezone)]


class Section(BaseModel):
    """Built by field name in code, by variable name from the environment; frozen, and typos rejected."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, **named(DEFAULT_PREFIX)
    )

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable that sets `field`."""
        alias = cls.model_fields[field].validation_alias
        assert isinstance(alias, str), (cls.__name__, field)
        return alias


class TemporalSettings(Section):
    model_config = named("POSTMORTEM_TEMPORAL_")

    address: str | None = None
    namespace: str = "default"
    task_queue: str = "postmortem"
    port: int = 7233
    ui_port: int = 8233
    # A report's workflow continues as new (with its state) once its history has this many events;
    # Temporal warns at 10,240 and stops a run at 51,200. Set into each new report's workflow input.
    history_threshold: int = Field(default=10_000, ge=100, le=50_000)


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


class StoreSettings(Section):
    data_dir: Path = Path("./data")
    database_url: SecretStr | None = None  # a PostgreSQL URL may carry the password
    database_schema: str | None = None
    # Bring the schema to the newest revision at start-up (`dev`, `api`, `worker`, the token commands).
    # Replicas sharing one database set it to false and run `postmortem migrate` once before them:
    # then a process refuses to start on a schema that is not the code's.
    migrate_on_start: bool = True

    @property
    def resolved_database_url(self) -> str:
        if self.database_url is not None and (url := self.database_url.get_secret_value()):
            return normalise_database_url(url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'postmortem.db').resolve()}"


class ServerSettings(Section):
    """How the service runs and how people reach it."""

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    bootstrap_admin_token: SecretStr | None = None
    log_level: str = "INFO"
    # `json`: one object per line with the report's ids as fields (postmortem.app.logs), for a log pipeline.
    log_format: Literal["text", "json"] = "text"
    # `host:port` where `postmortem worker` serves the Temporal SDK's Prometheus metrics (and ours); unset = off.
    worker_metrics_address: str | None = None
    # On SIGTERM `postmortem worker` stops polling and lets running activities finish for this long
    # before cancelling them (Temporal's graceful_shutdown_timeout); a container's stop grace must exceed it.
    worker_shutdown_seconds: float = Field(default=30.0, ge=0)

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class HttpSettings(Section):
    """Calls to outside APIs (sources, trackers, chat, calendar, SMTP)."""

    model_config = named("POSTMORTEM_HTTP_")

    timeout_seconds: float = Field(default=15.0, gt=0)


# Deeper than this, Temporal's payload decoder and pydantic's validators hit their own recursion limits.
JSON_DEPTH_CEILING = 200


class LimitsSettings(Section):
    """Hard limits on what one request may carry, each refused with a status and a message naming it.

    The webhook default is PagerDuty's own best-effort maximum payload (256 KiB); Alertmanager sends up
    to its 4 MiB limit (a group of many alerts). API bodies (JSON edits) get a cap of their own; the
    image upload keeps its own rule (postmortem.report.images).
    """

    webhook_max_bytes: int = Field(default=256 * 1024, ge=1024)
    alertmanager_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    api_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    json_max_depth: int = Field(default=64, ge=2, le=JSON_DEPTH_CEILING)


class PagerDutySettings(Section):
    """The REST API the evidence is read from, and the webhook secrets (several during a rotation)."""

    model_config = named("POSTMORTEM_PAGERDUTY_")

    api_url: BaseUrl = "https://api.pagerduty.com"
    api_token: SecretStr | None = None
    webhook_secrets: Annotated[list[SecretStr], BeforeValidator(_comma_list)] = Field(default_factory=list)


class OpsgenieSettings(Section):
    model_config = named("POSTMORTEM_OPSGENIE_")

    api_url: BaseUrl = "https://api.opsgenie.com"
    api_key: SecretStr | None = None
    webhook_token: SecretStr | None = None


class JsmSettings(Section):
    """Jira Service Management Operations: the alert-action webhook's token and the Ops REST API.

    The API is Atlassian's (`/jsm/ops/api/{cloud_id}/v1/...`), read with basic auth: an Atlassian
    account's email and an API token of that account."""

    model_config = named("POSTMORTEM_JSM_")

    api_url: BaseUrl = "https://api.atlassian.com"
    cloud_id: str | None = None
    email: str | None = None
    api_token: SecretStr | None = None
    webhook_token: SecretStr | None = None


class AlertmanagerSettings(Section):
    model_config = named("POSTMORTEM_ALERTMANAGER_")

    webhook_token: SecretStr | None = None
    service_labels: CommaList = Field(default_factory=lambda: ["service"])
    margin_minutes: int = Field(default=30, ge=0)


class SlackSettings(Section):
    model_config = named("POSTMORTEM_SLACK_")

    api_url: BaseUrl = "https://slack.com/api"
    bot_token: SecretStr | None = None


class SmtpSettings(Section):
    model_config = named("POSTMORTEM_SMTP_")

    host: str | None = None
    port: int = 587
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    sender: str = Field(default="postmortem@localhost", validation_alias="POSTMORTEM_SMTP_FROM")


class CalDavSettings(Section):
    model_config = named("POSTMORTEM_CALDAV_")

    url: BaseUrl | None = None
    username: str | None = None
    password: SecretStr | None = None


class MeetingSettings(Section):
    video_url_template: str | None = None

    @field_validator("video_url_template")
    @classmethod
    def _video_template(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format(postmortem_id="x", uid="x")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"video URL template may use {{postmortem_id}} and {{uid}} only: {exc}") from exc
        return value


class JiraSettings(Section):
    model_config = named("POSTMORTEM_JIRA_")

    url: BaseUrl | None = None
    email: str | None = None
    api_token: SecretStr | None = None
    project: str | None = None
    webhook_token: SecretStr | None = None


class GitHubSettings(Section):
    model_config = named("POSTMORTEM_GITHUB_")

    api_url: BaseUrl = "https://api.github.com"
    token: SecretStr | None = None
    repo: str | None = None
    webhook_secret: SecretStr | None = None


class LinearSettings(Section):
    model_config = named("POSTMORTEM_LINEAR_")

    api_url: BaseUrl = "https://api.linear.app/graphql"
    api_key: SecretStr | None = None
    team_id: str | None = None
    webhook_secret: SecretStr | None = None


class TicketsSettings(Section):
    """The default tracker (a team may name its own) and every tracker's account."""

    tracker: Literal["jira", "github", "linear"] | None = None
    # Our one label on every ticket (GitHub, Jira); the idempotency marker is a line in the body.
    label: str = Field(
        default="postmortem",
        min_length=1,
        max_length=50,
        pattern=r"^[^,\s]+$",
        validation_alias="POSTMORTEM_TICKETS_LABEL",
    )
    jira: JiraSettings = Field(default_factory=JiraSettings)
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    linear: LinearSettings = Field(default_factory=LinearSettings)


class GatherSettings(Section):
    model_config = named("POSTMORTEM_GATHER_")

    deadline_seconds: int = Field(default=300, ge=0)
    heartbeat_seconds: int = Field(default=60, ge=1)


class InboxSettings(Section):
    """The inbox of webhook deliveries and its relay to Temporal (postmortem.app.relay)."""

    model_config = named("POSTMORTEM_INBOX_")

    retention_hours: float = Field(default=168, gt=0)
    poll_seconds: float = Field(default=1.0, gt=0)
    # Longer than a hand-over takes (a start is cut off at 3 s); a lease that runs out early only
    # means a second, harmless hand-over.
    lease_seconds: float = Field(default=15.0, gt=0)
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=64, ge=1, le=1000)


class FollowUpSettings(Section):
    model_config = named("POSTMORTEM_FOLLOW_UP_")

    days: list[int] = Field(default_factory=lambda: [30, 60, 90])

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        if isinstance(value, str):
            return sorted(int(part) for part in value.split(",") if part.strip())
        return value


class ReportSettings(Section):
    """How reports read when no team says otherwise, and what the public summary leaves out."""

    language: Language = Language.EN
    template: TemplateVariant = TemplateVariant.AUTO
    timezone: TimeZone = "UTC"
    public_redact_patterns: PatternList = Field(default_factory=list)


class LlmSettings(Section):
    """The optional model that drafts the narrative sections: any OpenAI-compatible Chat Completions API.

    `url` is the base the path `/chat/completions` is appended to: `https://api.openai.com/v1`,
    `http://localhost:11434/v1` (Ollama), `http://host:8000/v1` (vLLM), or an Azure OpenAI deployment
    `https://<resource>.openai.azure.com/openai/deployments/<deployment>` with `api_version` set (then
    the key goes in the `api-key` header and `?api-version=` is added). Unset: no model step at all.
    """

    model_config = named("POSTMORTEM_LLM_")

    url: BaseUrl | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    api_version: str | None = None
    timeout_seconds: float = Field(default=60.0, gt=0)
    # A timeout, 5xx or 429 is tried again this many times (waiting what Retry-After asks, at most
    # max_wait_seconds) before the deterministic draft is kept.
    retries: int = Field(default=2, ge=0, le=10)
    max_wait_seconds: float = Field(default=30.0, ge=0)


class WebSettings(Section):
    """The pages: signed links in what we send to people (unset secret: one the store generates and keeps)."""

    model_config = named("POSTMORTEM_WEB_")

    link_secret: SecretStr | None = None
    link_ttl_days: int = Field(default=14, ge=1, le=365)
    # Co-editing (#14): how often a process looks for updates others appended (replicas, REST edits),
    # how long after the last keystroke the stored text follows, how many rows before they are folded.
    coedit_poll_seconds: float = Field(default=0.1, gt=0, le=10)
    coedit_save_seconds: float = Field(default=0.5, ge=0, le=30)
    coedit_compact_every: int = Field(default=200, ge=2)


def _pairs(value: object) -> object:
    """`a=b,c=d` (an environment variable) as {"a": "b", "c": "d"}; a mapping stays as it is."""
    if isinstance(value, str):
        pairs = [part.strip() for part in value.split(",") if part.strip()]
        malformed = [pair for pair in pairs if "=" not in pair]
        if malformed:
            raise ValueError(f"expected name=value pairs separated by commas, not {', '.join(malformed)!r}")
        return {key.strip(): item.strip() for key, _, item in (pair.partition("=") for pair in pairs)}
    return value


Pairs = Annotated[dict[str, str], BeforeValidator(_pairs)]
SsoRole = Literal["viewer", "editor", "reviewer", "admin"]


class OidcSettings(Section):
    """Single sign-on for the pages: OpenID Connect's authorization code flow (PKCE, state, nonce)
    against one identity provider, found by its issuer's discovery document. Unset issuer: off.

    The ID token's email claim names the person (as their API token's name does); groups in
    `groups_claim` can give a role and a team. API tokens stay for machines and the JSON API."""

    model_config = named("POSTMORTEM_OIDC_")

    # As the provider spells it (a trailing slash matters: the ID token's `iss` must equal it).
    issuer: Annotated[str | None, BeforeValidator(lambda value: value or None)] = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    provider_name: str = "single sign-on"  # the button says "Sign in with <provider_name>"
    scopes: CommaList = Field(default_factory=lambda: ["openid", "email", "profile"])
    email_claim: str = "email"
    allowed_domains: CommaList = Field(default_factory=list)  # set: anyone of these domains may sign in
    groups_claim: str = "groups"
    group_roles: Annotated[dict[str, SsoRole], BeforeValidator(_pairs)] = Field(default_factory=dict)
    group_teams: Pairs = Field(default_factory=dict)
    session_hours: int = Field(default=12, ge=1, le=24 * 30)

    @property
    def enabled(self) -> bool:
        return self.issuer is not None and bool(self.client_id)

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, issuer: str | None) -> str | None:
        if issuer is not None:
            _base_url(issuer)
        return issuer

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, scopes: list[str]) -> list[str]:
        return scopes if "openid" in scopes else ["openid", *scopes]


class TeamsFileSettings(Section):
    model_config = named("POSTMORTEM_TEAMS_")

    # Empty is unset: compose passes `${POSTMORTEM_TEAMS_FILE:-}` through as "" when .env leaves it out.
    file: Annotated[Path | None, BeforeValidator(lambda value: value or None)] = None
