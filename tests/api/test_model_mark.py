"""A section the model drafted says so (JSON and Markdown) until a person edits it through the API."""

from __future__ import annotations

from datetime import UTC, datetime

from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.factories import new_postmortem, pagerduty_event

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


async def test_a_persons_edit_takes_the_models_mark_away(api: Api) -> None:
    pm, _ = await api.store.postmortems.create_if_absent(new_postmortem(pagerduty_event("PMARK").incident))
    sections = [
        s.model_copy(update={"body": "It failed [E1].\n\nSources:\n\n- [E1] …", "drafted_by": "model gpt-4o-mini"})
        if s.key in ("summary", "impact")
        else s
        for s in pm.sections
    ]
    await api.store.postmortems.update(pm.id, pm.version, PostmortemChanges(sections=sections), NOW)
    url = f"/api/postmortems/{pm.id}"
    body = (await api.http.get(url, headers=api.auth(Role.VIEWER))).json()
    marks = {s["key"]: s["drafted_by"] for s in body["sections"]}
    assert marks["summary"] == marks["impact"] == "model gpt-4o-mini" and marks["timeline"] is None
    markdown = (await api.http.get(url, params={"format": "markdown"}, headers=api.auth(Role.VIEWER))).text
    assert markdown.count("Drafted by a language model") == 2

    edited = await api.http.patch(
        url,
        json={"sections": {"summary": {"body": "Checked and rewritten by the on-call."}}},
        headers={**api.auth(Role.EDITOR), "If-Match": f'"{body["version"]}"'},
    )
    assert edited.status_code == 200
    marks = {s["key"]: (s["drafted_by"], s["edited"]) for s in edited.json()["sections"]}
    assert marks["summary"] == (None, True) and marks["impact"] == ("model gpt-4o-mini", False)
    markdown = (await api.http.get(url, params={"format": "markdown"}, headers=api.auth(Role.VIEWER))).text
    assert markdown.count("Drafted by a language model") == 1
