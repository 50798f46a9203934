"""The worker's connections to the outside world: one client per outside system, built once, shared.

An `httpx.AsyncClient` costs a TLS context (the CA bundle read from disk and parsed, tens of
milliseconds) and a connection pool; a call made on a new client pays a new TCP connection and TLS
handshake as well. So a worker builds one `OutsideClients` at start-up (`postmortem.app.runtime`),
every activity class of that worker gets the same one, and it is closed when the worker stops:

* one TLS context for every HTTPS client (httpx's own default: certifi's bundle, or
  `SSL_CERT_FILE` / `SSL_CERT_DIR`), and one for SMTP (the system's store, as aiosmtplib's own
  default), each built once per process;
* one `httpx.AsyncClient` per configured outside system (PagerDuty, Opsgenie, JSM Operations, Slack, CalDAV, Jira,
  GitHub, Linear, the model), so a system's keep-alive connections are reused across calls and activities;
* one `SmtpMailer` when SMTP is configured (a message still opens its own SMTP session: relays
  drop idle sessions, and invites are few).

A system that is not configured gets no client at all (`None`): it costs nothing, and an activity
asking for it learns that it is not configured. "Configured" means what the activities need to call
the system; the predicates are here, once.

Activities constructed without one (tests, scripts) build their own on construction, once per
activity object, and close it in their `aclose()`.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, fields
from functools import cache

import httpx

from postmortem.config import (
    CalDavSettings,
    GitHubSettings,
    HttpSettings,
    JiraSettings,
    JsmSettings,
    LinearSettings,
    LlmSettings,
    OpsgenieSettings,
    PagerDutySettings,
    SlackSettings,
    SmtpSettings,
    TicketsSettings,
    reveal,
)
from postmortem.integrations.email_invite import SmtpMailer


@cache
def https_context() -> ssl.SSLContext:
    """The one TLS context of this process's HTTPS clients (what httpx would build for each client)."""
    return httpx.create_ssl_context()


@cache
def smtp_context() -> ssl.SSLContext:
    """The one TLS context of this process's SMTP sessions (what aiosmtplib would build per session)."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


# --- what "configured" means, per system --------------------------------------------------------


def pagerduty_configured(settings: PagerDutySettings) -> bool:
    return bool(reveal(settings.api_token))


def opsgenie_configured(settings: OpsgenieSettings) -> bool:
    return bool(reveal(settings.api_key))


def jsm_configured(settings: JsmSettings) -> bool:
    """The Ops REST API needs the site (cloud id) and an account: its email and API token."""
    return bool(settings.cloud_id and settings.email and reveal(settings.api_token))


def slack_configured(settings: SlackSettings) -> bool:
    return bool(reveal(settings.bot_token))


def caldav_configured(settings: CalDavSettings) -> bool:
    return bool(settings.url)


def smtp_configured(settings: SmtpSettings) -> bool:
    return bool(settings.host)


def jira_configured(settings: JiraSettings) -> bool:
    return bool(settings.url and reveal(settings.api_token) and settings.project)


def github_configured(settings: GitHubSettings) -> bool:
    return bool(reveal(settings.token) and settings.repo)


def linear_configured(settings: LinearSettings) -> bool:
    return bool(reveal(settings.api_key) and settings.team_id)


def llm_configured(settings: LlmSettings) -> bool:
    """The model step runs when its URL is set (Ollama and vLLM need no key; a model name is optional)."""
    return bool(settings.url)


@dataclass
class OutsideClients:
    """One client per configured outside system; None where a system is not configured."""

    pagerduty: httpx.AsyncClient | None = None
    opsgenie: httpx.AsyncClient | None = None
    jsm: httpx.AsyncClient | None = None
    slack: httpx.AsyncClient | None = None
    caldav: httpx.AsyncClient | None = None
    jira: httpx.AsyncClient | None = None
    github: httpx.AsyncClient | None = None
    linear: httpx.AsyncClient | None = None
    llm: httpx.AsyncClient | None = None
    smtp: SmtpMailer | None = None

    @classmethod
    def configured(
        cls,
        *,
        pagerduty: PagerDutySettings | None = None,
        opsgenie: OpsgenieSettings | None = None,
        jsm: JsmSettings | None = None,
        slack: SlackSettings | None = None,
        caldav: CalDavSettings | None = None,
        tickets: TicketsSettings | None = None,
        smtp: SmtpSettings | None = None,
        http: HttpSettings | None = None,
        llm: LlmSettings | None = None,
        tls: ssl.SSLContext | None = None,
        smtp_tls: ssl.SSLContext | None = None,
    ) -> OutsideClients:
        """Clients for the systems these sections configure (a section not given is not configured).

        `tls` / `smtp_tls` replace the process's shared contexts (a test's own CA, say).
        """
        timeout = (http or HttpSettings()).timeout_seconds

        def client(wanted: bool) -> httpx.AsyncClient | None:
            return httpx.AsyncClient(timeout=timeout, verify=tls or https_context()) if wanted else None

        trackers = tickets or TicketsSettings()
        mailer = None
        if smtp is not None and smtp_configured(smtp):
            assert smtp.host is not None
            mailer = SmtpMailer(
                smtp.host,
                smtp.port,
                smtp.username,
                reveal(smtp.password),
                smtp.starttls,
                timeout,
                tls_context=smtp_tls or smtp_context(),
            )
        return cls(
            pagerduty=client(pagerduty is not None and pagerduty_configured(pagerduty)),
            opsgenie=client(opsgenie is not None and opsgenie_configured(opsgenie)),
            jsm=client(jsm is not None and jsm_configured(jsm)),
            slack=client(slack is not None and slack_configured(slack)),
            caldav=client(caldav is not None and caldav_configured(caldav)),
            jira=client(tickets is not None and jira_configured(trackers.jira)),
            github=client(tickets is not None and github_configured(trackers.github)),
            linear=client(tickets is not None and linear_configured(trackers.linear)),
            llm=(
                httpx.AsyncClient(timeout=llm.timeout_seconds, verify=tls or https_context())
                if llm is not None and llm_configured(llm)
                else None
            ),
            smtp=mailer,
        )

    def tracker(self, name: str) -> httpx.AsyncClient | None:
        """The client of the tracker `name` ("jira", "github", "linear"), None when not configured."""
        return {"jira": self.jira, "github": self.github, "linear": self.linear}.get(name)

    @property
    def open(self) -> list[str]:
        """The systems that have a client, by name."""
        return [item.name for item in fields(self) if getattr(self, item.name) is not None]

    async def aclose(self) -> None:
        """Close every HTTP client (their pooled connections); safe to call twice."""
        clients = [getattr(self, item.name) for item in fields(self)]
        await asyncio.gather(
            *(c.aclose() for c in clients if isinstance(c, httpx.AsyncClient) and not c.is_closed),
            return_exceptions=True,
        )
