"""Every page in Chinese shows none of the English words that have a Chinese entry (postmortem/web/i18n.py).

The walk opens each page type in Chinese — the list, a Chinese report with every card filled (reviewers
IN_REVIEW, an action item, a comment, an image, a meeting, a refusal of the page's own), the board,
the metrics, sign-in, an error, the merge page — and reads what a person sees: text nodes and the
attributes read out (aria-label, placeholder, title, alt). The report's own content (its title, text,
timeline, incidents, what people typed) is left out: it is in whatever language it was written. The
same walk over the English pages finds the English words, so the check can fail.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

from postmortem.store.tokens import Role
from postmortem.web.i18n import WORDS
from tests.api.conftest import Api
from tests.api.test_review_api import drafted, fill, person
from tests.image_samples import png
from tests.support import eventually
from tests.web.test_pages import CSRF, sign_in

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SPOKEN = ("aria-label", "placeholder", "title", "alt")
# The report's content and people's input: not the UI's words.
CONTENT_CLASSES = {"report-body", "entries", "meta", "comment", "reviewers", "incidents-list", "gallery"}
CONTENT_IDS = {"title"}
CONTENT_TAGS = {"textarea", "script", "style", "pre"}
UNITS = re.compile(r"\d\s?(h|min|d)\b")


class Visible(HTMLParser):
    """The text and spoken attributes of a page, outside the report's content."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []  # per open element: is it (or an ancestor) content?
        self.texts: list[str] = []

    def skipping(self) -> bool:
        return bool(self.stack) and self.stack[-1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        content = (
            self.skipping()
            or tag in CONTENT_TAGS
            or bool(set((values.get("class") or "").split()) & CONTENT_CLASSES)
            or values.get("id") in CONTENT_IDS
        )
        if not content:
            self.texts += [values[name] or "" for name in SPOKEN if values.get(name)]
            if tag == "input" and values.get("type") in ("submit", "button"):
                self.texts.append(values.get("value") or "")
        if tag not in VOID:
            self.stack.append(content)

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping() and data.strip():
            self.texts.append(data.strip())


def english_words(html: str) -> list[str]:
    """The English entries of WORDS (those with other Chinese words) found in the page's UI text."""
    parser = Visible()
    parser.feed(html)
    english = {
        fragment.strip(" :;,.()")  # of a sentence with {placeholders}: its literal parts
        for words in WORDS.values()
        if words["en"] != words["zh"]
        for fragment in re.split(r"\{\w+\}", words["en"])
        if re.search("[A-Za-z]{2}", fragment) and (fragment == words["en"] or " " in fragment.strip())
    }
    found: list[str] = []
    for text in parser.texts:
        found += [word for word in english if text == word or (" " in word and word in text)]
        found += [f"unit {match.group(0)!r} in {text!r}" for match in UNITS.finditer(text)]
    return sorted(set(found))


async def pages(api: Api, language: str) -> dict[str, str]:
    """Every page type with data, as `language` (the report in it too)."""
    pm_id = await drafted(api, f"PI18N{language.upper()}")
    current = await api.store.postmortems.get(pm_id)
    changed = await api.http.patch(
        f"/api/postmortems/{pm_id}",
        json={"language": language, "cause_category": "capacity"},
        headers={**api.auth(Role.EDITOR), "If-Match": f'"{current.version}"'},
    )
    assert changed.status_code == 200, changed.text
    await fill(api, pm_id)
    await person(api, f"rev-{language}@example.com", Role.REVIEWER)
    base = f"/api/postmortems/{pm_id}"
    submitted = await api.http.post(
        f"{base}/submit", json={"reviewers": [f"rev-{language}@example.com"]}, headers=api.auth(Role.EDITOR)
    )
    assert submitted.status_code == 200, submitted.text
    items = await api.http.post(
        f"{base}/action-items", json={"description": "加告警", "due_date": "2030-01-31"}, headers=api.auth(Role.EDITOR)
    )
    assert items.status_code == 201, items.text
    uploaded = await api.http.post(
        f"{base}/images", files={"file": ("图.png", png(width=4), "image/png")}, headers=api.auth(Role.EDITOR)
    )
    assert uploaded.status_code == 201, uploaded.text
    await eventually(lambda: api.store.meetings.get(pm_id), timeout=30)

    await sign_in(api, Role.ADMIN)
    http = api.http
    http.cookies.set("lang", language)
    headers = {"Accept-Language": "zh-CN" if language == "zh" else "en"}
    seen: dict[str, str] = {}
    for name, path in (
        ("list", "/postmortems"),
        ("report", f"/postmortems/{pm_id}"),
        ("saved notice", f"/postmortems/{pm_id}?done=settings_saved"),
        ("board", "/action-items"),
        ("metrics", "/insights"),
        ("error", "/postmortems/pagerduty-NOPE"),
    ):
        answer = await http.get(path, headers=headers)
        assert answer.status_code in (200, 404), (path, answer.status_code)
        seen[name] = answer.text
    csrf = CSRF.search(seen["report"]).group(1)  # type: ignore[union-attr]
    stale = await http.post(
        f"/postmortems/{pm_id}/edit", data={"csrf": csrf, "section": "summary", "body": "x", "version": "1"}
    )
    assert stale.status_code == 412
    seen["merge"] = stale.text
    refused = await http.post(
        f"/postmortems/{pm_id}/settings", data={"csrf": csrf, "version": "1", "visibility": "team"}
    )
    assert refused.status_code == 412
    seen["refusal"] = refused.text
    async with httpx.AsyncClient(transport=http._transport, base_url="http://testserver") as fresh:
        fresh.cookies.set("lang", language)
        seen["sign-in"] = (await fresh.get(f"/postmortems/{pm_id}")).text
        seen["bad link"] = (await fresh.get(f"/postmortems/{pm_id}", params={"t": "a.b.c.d"})).text
    return seen


async def test_chinese_pages_show_no_english_ui_words(api: Api) -> None:
    chinese = await pages(api, "zh")
    leftovers = {name: english_words(html) for name, html in chinese.items()}
    assert not any(leftovers.values()), leftovers
    assert "可见范围与原因" in chinese["report"] and "更改评审人" in chinese["report"]
    assert "他人已先修改此复盘" in chinese["refusal"], "the page's own refusal in Chinese"
    assert "请登录后打开此复盘" in chinese["sign-in"] and "此链接无效" in chinese["bad link"]


async def test_the_same_walk_finds_english_on_the_english_pages(api: Api) -> None:
    english = await pages(api, "en")
    for name, html in english.items():
        assert english_words(html), f"the walk reads no English UI words on the English {name} page"
    assert {"Visibility and cause", "Change reviewers", "Add an image"} <= set(english_words(english["report"]))
