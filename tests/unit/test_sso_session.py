"""The single sign-on cookies: signed, expiring, each only for its purpose; and the settings that map groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from postmortem.config import OidcSettings
from postmortem.store.tokens import Role
from postmortem.web import sso_session
from postmortem.web.sso_session import Flow, SsoSession

SECRET = "a-link-secret-for-tests"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_a_session_opens_until_it_expires_and_only_under_its_key() -> None:
    session = SsoSession(
        email="pat@example.com", role=Role.REVIEWER, team="payments", expires=int(NOW.timestamp()) + 60
    )
    sealed = sso_session.seal_session(SECRET, session)
    assert sealed.startswith("sso.")
    assert sso_session.open_session(SECRET, sealed, NOW) == session
    assert sso_session.open_session(SECRET, sealed, NOW + timedelta(seconds=61)) is None  # expired
    assert sso_session.open_session("another-secret", sealed, NOW) is None  # the key rotated
    assert sso_session.open_session(SECRET, sealed.removeprefix("sso."), NOW) is None
    # A flow cookie (same secret) never passes for a session, nor the other way round.
    flow = Flow(state="s", nonce="n", verifier="v", next="/postmortems", expires=int(NOW.timestamp()) + 60)
    sealed_flow = sso_session.seal_flow(SECRET, flow)
    assert sso_session.open_flow(SECRET, sealed_flow, NOW) == flow
    assert sso_session.open_session(SECRET, "sso." + sealed_flow, NOW) is None
    assert sso_session.open_flow(SECRET, sealed.removeprefix("sso."), NOW) is None


@pytest.mark.parametrize("damaged", ["", ".", "x.y", "sso.....", "sso.e30.AAAA", "sso.%%%.%%%"])
def test_damaged_cookies_are_no_session(damaged: str) -> None:
    assert sso_session.open_session(SECRET, damaged, NOW) is None
    assert sso_session.open_flow(SECRET, damaged, NOW) is None


def test_group_maps_from_the_environment() -> None:
    settings = OidcSettings.model_validate(
        {
            "POSTMORTEM_OIDC_ISSUER": "https://login.example.com/",
            "POSTMORTEM_OIDC_CLIENT_ID": "web",
            "POSTMORTEM_OIDC_GROUP_ROLES": "sre = editor, pm-admins=admin",
            "POSTMORTEM_OIDC_GROUP_TEAMS": "team-payments=payments",
            "POSTMORTEM_OIDC_SCOPES": "email,groups",
        }
    )
    assert settings.enabled and settings.issuer == "https://login.example.com/"  # kept as the provider spells it
    assert settings.group_roles == {"sre": "editor", "pm-admins": "admin"}
    assert settings.group_teams == {"team-payments": "payments"}
    assert settings.scopes == ["openid", "email", "groups"]
    assert not OidcSettings().enabled
    for bad in ({"POSTMORTEM_OIDC_GROUP_ROLES": "sre=owner"}, {"POSTMORTEM_OIDC_GROUP_TEAMS": "payments"}):
        with pytest.raises(ValidationError):
            OidcSettings.model_validate(bad)
    with pytest.raises(ValidationError, match="http"):
        OidcSettings.model_validate({"POSTMORTEM_OIDC_ISSUER": "login.example.com"})
