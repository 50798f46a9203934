"""Who the service knows: a reviewer must be someone who can be reached and can act, or a report waits forever.

Known people are the names of the active API tokens (a person's token is named by their email) and the
emails the teams file names (its `[people]`, attendees, organizers, owners). Names compare without case, as `Review.reviewer` does.
"""

from __future__ import annotations

from fastapi import HTTPException

from postmortem.api.services import Services


async def unknown_people(services: Services, names: list[str]) -> list[str]:
    """The names in `names` that are neither an active token's name nor a person of the teams file."""
    known = services.teams.known_people()
    known |= {token.name.casefold() for token in await services.store.tokens.list() if token.revoked_at is None}
    return [name for name in dict.fromkeys(names) if name.casefold() not in known]


async def require_known(services: Services, names: list[str]) -> None:
    """422 naming whoever the service does not know."""
    unknown = await unknown_people(services, names)
    if unknown:
        raise HTTPException(
            422,
            f"unknown reviewer(s) {', '.join(unknown)}: name people the service knows "
            "(an API token's name, or a person of the teams file)",
        )
