"""Templates over REST: built-ins listed and copyable, not editable; teams' own validated and versioned."""

from __future__ import annotations

from postmortem.store.tokens import Role
from tests.api.conftest import Api

SECTIONS = [
    {"key": "summary", "title": "Summary", "required": True, "prompt": "What happened?", "text": "{{ primary.title }}"},
    {
        "key": "customer_comms",
        "title": "Customer communication",
        "required": False,
        "prompt": "What did we tell?",
        "text": "",
    },
]


async def test_builtins_are_listed_and_read_only(api: Api) -> None:
    listed = await api.http.get("/api/templates", headers=api.auth(Role.VIEWER))
    names = [t["name"] for t in listed.json()]
    for name in (
        "en-full",
        "en-lightweight",
        "en-status_page",
        "en-regulated",
        "zh-full",
        "zh-lightweight",
        "zh-status_page",
        "zh-regulated",
    ):
        assert name in names
    regulated = (await api.http.get("/api/templates/en-regulated", headers=api.auth())).json()
    assert {"compliance", "evidence_log", "corrective_actions_audit"} <= {s["key"] for s in regulated["sections"]}
    assert regulated["builtin"] is True
    body = {"name": "en-full", "sections": SECTIONS}
    assert (await api.http.put("/api/templates/en-full", json=body, headers=api.auth(Role.EDITOR))).status_code == 403
    assert (await api.http.delete("/api/templates/en-full", headers=api.auth())).status_code == 403
    assert (await api.http.post("/api/templates", json=body, headers=api.auth(Role.EDITOR))).status_code == 409


async def test_custom_templates_are_created_copied_replaced_and_deleted(api: Api) -> None:
    editor = api.auth(Role.EDITOR)
    created = await api.http.post(
        "/api/templates",
        json={
            "name": "payments-review",
            "language": "en",
            "sections": SECTIONS,
            "fields": [
                {
                    "name": "cause_category",
                    "label": "Cause category",
                    "type": "select",
                    "options": ["process", "observability", "change management", "capacity", "dependency"],
                }
            ],
        },
        headers=editor,
    )
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == '"1"' and created.json()["builtin"] is False
    copy = await api.http.post(
        "/api/templates", json={"name": "zh-copy", "language": "zh", "copy_from": "zh-full"}, headers=editor
    )
    assert copy.status_code == 201 and copy.json()["sections"][0]["title"] == "摘要"
    assert (
        await api.http.post("/api/templates", json={"name": "payments-review", "sections": SECTIONS}, headers=editor)
    ).status_code == 409

    changed = {"name": "payments-review", "sections": SECTIONS[:1]}
    assert (await api.http.put("/api/templates/payments-review", json=changed, headers=editor)).status_code == 428
    replaced = await api.http.put("/api/templates/payments-review", json=changed, headers={**editor, "If-Match": '"1"'})
    assert replaced.status_code == 200 and replaced.headers["ETag"] == '"2"'
    stale = await api.http.put("/api/templates/payments-review", json=changed, headers={**editor, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert (await api.http.delete("/api/templates/payments-review", headers=editor)).status_code == 403
    assert (await api.http.delete("/api/templates/payments-review", headers=api.auth())).status_code == 204
    assert (await api.http.get("/api/templates/payments-review", headers=api.auth())).status_code == 404


async def test_template_validation_says_what_is_wrong(api: Api) -> None:
    editor = api.auth(Role.EDITOR)
    for body, says in [
        ({"name": "Bad Name", "sections": SECTIONS}, "lower-case"),
        ({"name": "dupes", "sections": [SECTIONS[0], SECTIONS[0]]}, "used more than once"),
        ({"name": "broken", "sections": [{**SECTIONS[0], "text": "{% if %}"}]}, "section 'summary': template error"),
        ({"name": "badkey", "sections": [{**SECTIONS[0], "key": "Root Cause"}]}, "lower-case letters"),
        ({"name": "nosections"}, "copy_from"),
        (
            {"name": "emptyselect", "sections": SECTIONS, "fields": [{"name": "x", "label": "X", "type": "select"}]},
            "without options",
        ),
        ({"name": "unknowncopy", "copy_from": "nope"}, "no template"),
    ]:
        response = await api.http.post("/api/templates", json=body, headers=editor)
        assert response.status_code in (404, 422), (body, response.text)
        assert says in response.json()["detail"], (body, response.json())


async def test_a_report_is_redrafted_from_the_teams_own_template(api: Api) -> None:
    from tests.factories import new_postmortem, pagerduty_event

    pm, _ = await api.store.postmortems.create_if_absent(new_postmortem(pagerduty_event("PCUSTOM").incident))
    editor = api.auth(Role.EDITOR)
    await api.http.post("/api/templates", json={"name": "payments-review", "sections": SECTIONS}, headers=editor)
    url = f"/api/postmortems/{pm.id}"
    edited = await api.http.patch(
        url, json={"sections": {"summary": {"body": "Our own words."}}}, headers={**editor, "If-Match": '"1"'}
    )
    switched = await api.http.patch(
        url, json={"template": "payments-review"}, headers={**editor, "If-Match": edited.headers["ETag"]}
    )
    assert switched.status_code == 200, switched.text
    body = switched.json()
    assert body["template_name"] == "payments-review"
    sections = {s["key"]: s for s in body["sections"]}
    assert sections["summary"]["body"] == "Our own words."  # a person's edit survives the switch
    assert sections["customer_comms"]["title"] == "Customer communication"
    back = await api.http.patch(
        url, json={"template": "zh-full"}, headers={**editor, "If-Match": switched.headers["ETag"]}
    )
    assert back.status_code == 200 and back.json()["template_name"] is None and back.json()["language"] == "zh"
    unknown = await api.http.patch(url, json={"template": "nope"}, headers={**editor, "If-Match": back.headers["ETag"]})
    assert unknown.status_code == 422 and "GET /api/templates" in unknown.json()["detail"]
    await api.http.post(
        "/api/templates",
        json={"name": "broken-vars", "sections": [{"key": "summary", "title": "S", "text": "{{ no_such_variable }}"}]},
        headers=editor,
    )
    broken = await api.http.patch(
        url, json={"template": "broken-vars"}, headers={**editor, "If-Match": back.headers["ETag"]}
    )
    assert broken.status_code == 422 and "no_such_variable" in broken.json()["detail"]
