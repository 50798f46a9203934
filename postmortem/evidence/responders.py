"""Who responded: everyone who acted in the incidents, once across every source, with what they did.

A person is assigned, acknowledged, escalated to, reassigned to, resolved, or wrote a note. The
sources name the same person differently (PagerDuty by user id and name, Opsgenie's and JSM's logs
and notes by email, a JSM alert's owner by display name): the teams file's `[people]` (id or name →
email) makes them one, and so does an email or a PagerDuty id they share. Services, integrations
and "System" never count.
"""

from __future__ import annotations

from collections.abc import Mapping

from postmortem.evidence.models import EntryKind, TimelineEntry
from postmortem.models import RESPONDER_ROLES, Incident, Person, Responder, ResponderRole

ROLE_OF_KIND: Mapping[EntryKind, ResponderRole] = {
    EntryKind.ACKNOWLEDGED: "acknowledged",
    EntryKind.RESOLVED: "resolved",
    EntryKind.NOTE: "wrote_note",
    EntryKind.MITIGATED: "wrote_note",
    EntryKind.ESCALATED: "escalated_to",
    EntryKind.REASSIGNED: "reassigned_to",
}


class _Book:
    """The people met so far, each under every key they are known by."""

    def __init__(self, people: Mapping[str, str]) -> None:
        self._people = {key.casefold(): email for key, email in people.items()}
        self._by_key: dict[str, int] = {}
        self.found: list[tuple[Responder, set[ResponderRole]]] = []

    def email_of(self, person: Person) -> str | None:
        if person.email:
            return person.email
        return next(
            (self._people[k.casefold()] for k in (person.id, person.name) if k and k.casefold() in self._people), None
        )

    def add(self, person: Person, role: ResponderRole) -> None:
        email = self.email_of(person)
        keys = [f"email:{email.casefold()}" if email else None, f"id:{person.id}" if person.id else None]
        keys.append(f"name:{person.name.casefold()}" if person.name else None)
        known = [key for key in keys if key]
        if not known:
            return
        index = next((self._by_key[key] for key in known if key in self._by_key), None)
        if index is None:
            index = len(self.found)
            self.found.append((Responder(), set()))
        responder, roles = self.found[index]
        responder.name = responder.name or person.name or (None if email else person.id)
        responder.email = responder.email or email
        roles.add(role)
        for key in known:
            self._by_key.setdefault(key, index)


def responders(
    incidents: list[Incident], timeline: list[TimelineEntry], people: Mapping[str, str] | None = None
) -> list[Responder]:
    """Everyone who acted, in the order they first appear (the incidents' own people, then the
    timeline by time); `people` is the teams file's `[people]` table."""
    book = _Book(people or {})
    first_assignment: set[str | None] = set()
    for incident in incidents:
        resolver = incident.resolved_by
        for person in incident.responders:
            same = resolver is not None and (person.id or person.label) == (resolver.id or resolver.label)
            book.add(person, "resolved" if same else "assigned")
        if resolver is not None:
            book.add(resolver, "resolved")
    for entry in sorted(timeline, key=lambda e: e.at):
        role = ROLE_OF_KIND.get(entry.kind)
        if role is None:
            continue
        if entry.kind == EntryKind.REASSIGNED and entry.incident_id not in first_assignment:
            first_assignment.add(entry.incident_id)
            role = "assigned"  # an incident's first assignment is the page, not a hand-over
        for person in entry.people:
            book.add(person, role)
    return [
        responder.model_copy(update={"roles": [role for role in RESPONDER_ROLES if role in roles]})
        for responder, roles in book.found
    ]


def known_emails(found: list[Responder]) -> dict[str, str]:
    """Name → email of responders a report already has, so a recomputation (a linked incident, late
    evidence) keeps the mapping the teams file gave when the report was drafted."""
    return {responder.name: responder.email for responder in found if responder.name and responder.email}
