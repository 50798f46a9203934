"""Final exports of a report: Markdown, sanitised standalone HTML, JSON, PDF and the public summary."""

from __future__ import annotations

import base64
import ctypes
import hashlib
import io
import json
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from markdown_it import MarkdownIt
from pypdf import PdfReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from postmortem.meeting.models import AgendaItem, Attendee, Meeting
from postmortem.models import (
    ActionItem,
    ActionItemStatus,
    Incident,
    Language,
    Link,
    Person,
    PolicyDecision,
    PolicyOutcome,
    Postmortem,
    Priority,
    Ref,
    Severity,
    SimilarReport,
    Source,
    Status,
    TemplateVariant,
)
from postmortem.report.drafting import draft_report
from postmortem.report.export_pdf import covering_font, export_pdf
from postmortem.report.exports import (
    CONTENT_SECURITY_POLICY,
    export_html,
    export_json,
    export_markdown,
    sanitise_html,
)
from postmortem.report.public_summary import public_summary
from postmortem.report.rendering import render_markdown
from tests.factories import pagerduty_event

UTC = UTC
EN, ZH = Language.EN, Language.ZH
NOW = datetime(2024, 3, 10, 2, 0, tzinfo=UTC)
DECISION = PolicyDecision(outcome=PolicyOutcome.FULL, reasons=["SEV2"])


def incident(**changes) -> Incident:
    fields = dict(
        source=Source.PAGERDUTY,
        id="PABC123",
        number="42",
        title="Checkout API latency",
        services=[Ref(id="PF9KMXH", name="API Service")],
        severity=Severity.SEV2,
        urgency="high",
        created_at=datetime(2024, 3, 9, 23, 30, tzinfo=UTC),
        acknowledged_at=datetime(2024, 3, 9, 23, 40, tzinfo=UTC),
        resolved_at=datetime(2024, 3, 10, 1, 0, tzinfo=UTC),
        responders=[Person(name="Alice Smith", email="alice@acme.example")],
        resolved_by=Person(name="Alice Smith"),
        links=[Link(title="PagerDuty incident", url="https://acme.pagerduty.com/incidents/PABC123")],
    )
    fields.update(changes)
    return Incident(**fields)


def action_item(**changes) -> ActionItem:
    fields = dict(
        id="ai-1",
        description="Split the a|b pool\nand add a retry",
        owner="bob",
        due_date=date(2024, 3, 20),
        priority=Priority.HIGH,
        status=ActionItemStatus.OPEN,
        created_at=NOW,
        updated_at=NOW,
    )
    fields.update(changes)
    return ActionItem(**fields)


def report(
    language=EN,
    *,
    status=Status.PUBLISHED,
    incidents=None,
    action_items=(),
    zone="Asia/Shanghai",
    variant=TemplateVariant.FULL,
    bodies=None,
    **changes,
) -> Postmortem:
    incidents = incidents or [incident()]
    d = draft_report(incidents, decision=DECISION, language=language, variant=variant, zone=zone, now=NOW)
    sections = [s.model_copy(update={"body": (bodies or {}).get(s.key, s.body)}) for s in d.sections]
    fields = dict(
        id="pm-1",
        title=d.title,
        status=status,
        team="payments",
        services=d.metrics.services,
        language=d.language,
        variant=d.variant,
        timezone=zone,
        severity=d.metrics.highest_severity,
        sections=sections,
        metrics=d.metrics,
        incidents=incidents,
        action_items=list(action_items),
        workflow_id="postmortem-pm-1",
        version=3,
        created_at=NOW,
        updated_at=NOW,
    )
    fields.update(changes)
    return Postmortem(**fields)


def meeting(**changes) -> Meeting:
    fields = dict(
        postmortem_id="pm-1",
        uid="pm-1@postmortem",
        sequence=2,
        title="Review: Checkout API latency",
        start=datetime(2024, 3, 12, 2, 0, tzinfo=UTC),
        end=datetime(2024, 3, 12, 3, 0, tzinfo=UTC),
        timezone="Asia/Shanghai",
        organizer=Attendee(email="pm-bot@acme.example"),
        attendees=[Attendee(email="alice@acme.example", name="Alice Smith")],
        agenda=[AgendaItem(title="Incident recap", minutes=30), AgendaItem(title="Action items", minutes=30)],
        report_url="https://postmortems.acme.example/pm-1",
        video_url="https://meet.acme.example/pm-1",
    )
    fields.update(changes)
    return Meeting(**fields)


RICH_BODY = {
    EN: "The **connection pool** was exhausted after a *config push*; see [the runbook](https://runbooks.example.com/pool).\n\n"
    "1. Roll back the push\n2. Raise the pool limit\n   - watch `pool.in_use`\n\n> Verified by the on-call.",
    ZH: "配置推送后**连接池**被耗尽；参见[运行手册](https://runbooks.example.com/pool)。\n\n"
    "1. 回滚推送\n2. 提高连接池上限\n   - 观察 `pool.in_use`\n\n> 已由值班人员确认。",
}


# --- Markdown --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", [EN, ZH])
def test_markdown_export_of_a_draft_has_no_prompts_but_keeps_its_status(language):
    pm = report(language, status=Status.DRAFT)
    assert "> " + pm.sections[0].prompt in render_markdown(pm)  # the draft rendering shows prompts...
    md = export_markdown(pm)
    assert not any(line.startswith("> ") for line in md.splitlines())  # ...the export never does
    assert ("**DRAFT**" if language == EN else "**草稿**") in md
    for section in pm.sections:
        assert f"## {section.title}" in md.splitlines()
        if section.body:
            assert section.body in md


@pytest.mark.parametrize("language", [EN, ZH])
def test_the_export_is_for_its_readers_summary_first_no_working_blocks_every_ticket_linked(language):
    unread = {
        EN: "- ⚠ PagerDuty could not be read for incident P1: PagerDuty answered 404 Not Found",
        ZH: "- ⚠ 无法读取 PagerDuty（事故 P1）：PagerDuty answered 404 Not Found",
    }[language]
    base = report(language)
    timeline = next(s for s in base.sections if s.key == "timeline")
    pm = report(
        language,
        action_items=[
            action_item(ticket_key="acme/ops#7", ticket_url="https://github.com/acme/ops/issues/7"),
            action_item(id="ai-2", description="Page on saturation"),
        ],
        bodies={"timeline": f"{unread}\n{timeline.body}"},
    )
    m = meeting()
    team_view, md = render_markdown(pm, m), export_markdown(pm, m)
    summary = next(s for s in pm.sections if s.key == "summary")
    metrics_heading = "## " + ("Key metrics" if language == EN else "关键指标")
    meeting_heading = "## " + ("Review meeting" if language == EN else "复盘会议")
    # the team's own rendering keeps its working blocks ...
    assert meeting_heading in team_view and "alice@acme.example" in team_view and "404 Not Found" in team_view
    # ... the export leads with the summary, once, and leaves them out
    assert md.index(f"## {summary.title}") < md.index(metrics_heading)
    assert md.count(f"## {summary.title}") == 1 and md.count(summary.body) == 1
    assert meeting_heading not in md and "alice@acme.example" not in md and "meet.acme.example" not in md
    assert "⚠" not in md and "404 Not Found" not in md
    assert timeline.body.strip().splitlines()[0] in md, "the timeline itself stays"
    assert "[acme/ops#7](https://github.com/acme/ops/issues/7)" in md
    assert pm.sections[0].prompt  # prompts are blanked on a copy, never on the caller's report


# --- HTML: parse the output like a browser would, then look for anything that could run -------------------


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.comments: list[str] = []
        self.stack: list[str] = []
        self.by_tag_text: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in {"br", "hr", "img", "meta"}:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        self.text.append(data)
        for tag in set(self.stack):
            self.by_tag_text.setdefault(tag, []).append(data)

    def handle_comment(self, data):
        self.comments.append(data)

    def all_text(self) -> str:
        return "".join(self.text)

    def texts(self, tag: str) -> str:
        return " ".join(self.by_tag_text.get(tag, []))


def parse(document: str) -> Collector:
    collector = Collector()
    collector.feed(document)
    collector.close()
    return collector


SAFE_BODY_TAGS = {
    "main",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "br",
    "hr",
    "blockquote",
    "pre",
    "code",
    "strong",
    "em",
    "b",
    "i",
    "s",
    "del",
    "ul",
    "ol",
    "li",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "a",
    "img",
}
HEAD_TAGS = {"html", "head", "meta", "title", "style", "body"}
SAFE_SCHEMES = ("http://", "https://", "mailto:")


def normalised_url(value: str) -> str:
    """What a browser would see: no whitespace or control characters anywhere, lower case."""
    return re.sub(r"[\x00-\x20\x7f]+", "", value).lower()


def assert_nothing_runs(document: str) -> Collector:
    page = parse(document)
    names = [tag for tag, _ in page.tags]
    assert set(names) <= SAFE_BODY_TAGS | HEAD_TAGS, set(names) - SAFE_BODY_TAGS - HEAD_TAGS
    for forbidden in (
        "script",
        "iframe",
        "object",
        "embed",
        "svg",
        "math",
        "form",
        "frame",
        "base",
        "link",
        "input",
        "button",
        "textarea",
        "video",
        "audio",
        "template",
        "noscript",
    ):
        assert forbidden not in names, forbidden
    assert names.count("style") == 1 and names.count("meta") == 4 and names.count("title") == 1  # our own, in <head>
    assert not page.comments
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, value)
            assert name not in {"style", "srcdoc", "formaction", "xlink:href", "action", "background"}, (tag, name)
            if tag != "meta":
                compact = normalised_url(value or "")
                for bad in ("javascript:", "vbscript:", "data:", "expression(", "livescript:"):
                    assert bad not in compact, (tag, name, value)
            if name in {"href", "src"}:
                assert normalised_url(value or "").startswith(SAFE_SCHEMES), (tag, name, value)
        if tag == "a" and "href" in attrs:
            assert set((attrs.get("rel") or "").split()) >= {"noopener", "noreferrer", "nofollow"}, attrs
    return page


PAYLOADS = [
    "<script>alert('xss-script')</script>",
    "<img src=x onerror=alert('xss-img')>",
    "<svg onload=alert('xss-svg')>",
    "<iframe src=\"javascript:alert('xss-iframe')\"></iframe>",
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="></object><embed src=x.swf>',
    "<a href=\"javascript:alert('xss-a')\">raw link</a>",
    "<p style=\"width:expression(alert('xss-expr'))\">styled</p><style>body{background:url(javascript:alert(1))}</style>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('xss-mxss')>",
    "\"><script>alert('xss-break')</script>",
    "&lt;script&gt;alert('xss-entity')&lt;/script&gt; &#60;img src=x onerror=alert(1)&#62;",
    "[md-js](javascript:alert('xss-md')) [md-case](JaVaScRiPt:alert(1)) [md-vb](vbscript:msgbox(1))",
    "[md-data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) ![img-data](data:image/png;base64,iVBORw0KGgo=)",
    "[md-entity](&#106;avascript:alert(1)) [md-tab](java\tscript:alert(1)) [md-pointy](<javascript:alert(1)>)",
    "![img-js](javascript:alert(1)) <javascript:alert(1)> [ref-js][r]\n\n[r]: javascript:alert(1)",
    "`<script>alert('in-code')</script>`",
]
PAYLOAD = " ".join(p.replace("\n", " ") for p in PAYLOADS[:-2]) + " " + PAYLOADS[-1]
URL_PAYLOADS = [
    "javascript:alert('xss-url')",
    "JAVASCRIPT:alert(1)",
    " javascript:alert(1)",
    "java\nscript:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "https://ok.example/\"><script>alert('xss-href')</script>",
    "https://ok.example/a) [x](javascript:alert(2)",
    "//evil.example/relative",
    "file:///etc/passwd",
]


def marked(field: str) -> str:
    """A payload that also carries a visible marker, to prove the field really reached the document."""
    return f"MARK-{field} {PAYLOAD}"


def xss_report(field: str, language=EN) -> tuple[Postmortem, Meeting | None]:
    value = marked(field)
    if field == "incident title":
        return report(language, incidents=[incident(title=value)]), None
    if field == "responder names":
        pm = report(language, incidents=[incident(responders=[Person(name=value)], resolved_by=Person(name=value))])
        return pm.model_copy(update={"metrics": pm.metrics.model_copy(update={"responders": [value]})}), None
    if field == "link urls":
        incidents = [
            incident(id=f"P{n}", number=str(n), title=f"MARK-{field}", links=[Link(title="x", url=url)])
            for n, url in enumerate(URL_PAYLOADS)
        ]
        return report(language, incidents=incidents), None
    pm = report(language)
    if field == "title":
        return pm.model_copy(update={"title": value}), None
    if field == "team and services":
        return pm.model_copy(
            update={"team": value, "metrics": pm.metrics.model_copy(update={"services": [value]})}
        ), None
    if field == "section titles":
        return pm.model_copy(update={"sections": [s.model_copy(update={"title": value}) for s in pm.sections]}), None
    if field == "every section body":
        return pm.model_copy(update={"sections": [s.model_copy(update={"body": value}) for s in pm.sections]}), None
    if field == "action item description":
        return pm.model_copy(update={"action_items": [action_item(description=value)]}), None
    if field == "action item owner":
        return pm.model_copy(update={"action_items": [action_item(owner=value)]}), None
    if field == "meeting":
        return pm, meeting(
            attendees=[Attendee(email=value)],
            video_url="javascript:alert('xss-video') " + value,
            agenda=[AgendaItem(title=value, minutes=60)],
        )
    raise AssertionError(field)


XSS_FIELDS = [
    "title",
    "team and services",
    "section titles",
    "every section body",
    "action item description",
    "action item owner",
    "incident title",
    "responder names",
    "link urls",
    "meeting",
]


@pytest.mark.parametrize("language", [EN, ZH])
@pytest.mark.parametrize("field", XSS_FIELDS)
def test_html_neutralises_payloads_in_every_field(field, language):
    pm, m = xss_report(field, language)
    document = export_html(pm, m)
    page = assert_nothing_runs(document)
    text = page.all_text()
    if field == "meeting":  # the export is for its readers: the meeting's logistics are not in it at all
        assert "MARK-meeting" not in document
        return
    assert f"MARK-{field}" in text  # the field did reach the document...
    if field != "link urls":
        assert "<script>alert('xss-script')</script>" in text  # ...and raw HTML in it reads as text, inert
    else:
        # Every unsafe URL lost its link; the incident stays named, as text.
        assert text.count("pagerduty #") >= len(URL_PAYLOADS)
        hrefs = [href for tag, attrs in page.tags if tag == "a" and (href := attrs.get("href"))]
        assert all(href.startswith("https://ok.example/") for href in hrefs if "ok.example" in href)
        assert not any("javascript" in href.lower() or "evil.example" in href for href in hrefs)


def test_html_title_element_is_escaped_text():
    pm, _ = xss_report("title")
    page = assert_nothing_runs(export_html(pm))
    assert page.texts("title") == pm.title  # <title> is plain text, escaped as a whole
    assert "MARK-title <script>alert('xss-script')</script> <img src=x" in page.texts("h1")  # the heading: Markdown


RAW_HTML_ATTACKS = [
    "<script>alert(1)</script>",
    "<ScRiPt src=//evil.example/x.js></ScRiPt>",
    "<img src=x onerror=alert(1)>",
    '<img src="javascript:alert(1)"><img src="data:image/svg+xml;base64,PHN2Zz4=">',
    "<svg><script>alert(1)</script></svg><svg/onload=alert(1)>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<a href="javascript:alert(1)">a</a><a href="JaVa&#x09;ScRiPt:alert(1)">b</a><a href="&#106;avascript:alert(1)">c</a>',
    '<a href="vbscript:msgbox(1)">d</a><a href="data:text/html,<script>alert(1)</script>">e</a>',
    '<a href="/relative">f</a><a href="//evil.example">g</a>',
    '<div style="background:url(javascript:alert(1))">h</div><p style="x:expression(alert(1))">i</p>',
    "<style>@import 'https://evil.example/x.css';</style>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<form action="https://evil.example"><input name=x><button formaction=javascript:alert(1)>j</button></form>',
    '<object data=x></object><embed src=x><base href="https://evil.example/"><link rel=stylesheet href=x>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<details open ontoggle=alert(1)>k</details><body onload=alert(1)>",
    "<!--<img src=x onerror=alert(1)>-->",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
]


@pytest.mark.parametrize("attack", RAW_HTML_ATTACKS)
def test_sanitiser_alone_stops_raw_html_attacks(attack):
    """The second wall on its own: even raw HTML (which markdown-it never lets through) comes out inert."""
    page = parse(sanitise_html(attack))
    for tag, attrs in page.tags:
        assert tag in SAFE_BODY_TAGS, tag
        for name, value in attrs.items():
            assert not name.startswith("on") and name not in {"style", "srcdoc", "formaction", "action"}
            if name in {"href", "src"}:
                assert normalised_url(value or "").startswith(SAFE_SCHEMES), value
    assert not page.comments


def test_sanitiser_keeps_safe_links_and_formatting():
    cleaned = sanitise_html(
        '<h2>T</h2><p><a href="https://ok.example/" rel="opener" target="_blank" class="x">ok</a> '
        '<a href="mailto:ops@example.com">mail</a> <strong>b</strong></p><ol start="3"><li>x</li></ol>'
        '<img src="https://img.example/a.png" alt="graph">'
    )
    assert cleaned == (
        '<h2>T</h2><p><a href="https://ok.example/" rel="noopener noreferrer nofollow">ok</a> '
        '<a href="mailto:ops@example.com" rel="noopener noreferrer nofollow">mail</a> <strong>b</strong></p>'
        '<ol start="3"><li>x</li></ol><img src="https://img.example/a.png" alt="graph">'
    )


def test_html_images_load_over_https_only_and_otherwise_read_as_their_alt_text():
    body = (
        "![graph](https://grafana.example.com/p.png) ![plain](http://img.example/p.png) "
        "![inline](data:image/png;base64,iVBORw0KGgo=) ![rel](/api/images/a.png) ![js](javascript:alert(1))"
    )
    page = assert_nothing_runs(export_html(report(EN, bodies={"summary": body})))
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert images == [{"src": "https://grafana.example.com/p.png", "alt": "graph"}]
    assert "plain inline rel" in page.all_text() and "js" in page.all_text()


def test_html_keeps_ordinary_markdown():
    pm = report(EN, action_items=[action_item()], bodies={"root_cause": RICH_BODY[EN]})
    page = assert_nothing_runs(export_html(pm, meeting()))
    names = [tag for tag, _ in page.tags]
    for tag in (
        "h1",
        "h2",
        "h3",
        "table",
        "thead",
        "tbody",
        "th",
        "td",
        "ul",
        "ol",
        "li",
        "strong",
        "em",
        "code",
        "blockquote",
        "a",
    ):
        assert tag in names, tag
    assert page.texts("h1") == pm.title
    headings = page.texts("h2")
    for title in ["Key metrics"] + [s.title for s in pm.sections]:
        assert title in headings
    assert "Review meeting" not in headings  # the meeting's logistics are the team's, not the readers'
    assert "Metric" in page.texts("th") and "Action item" in page.texts("th")
    cells = page.texts("td")
    assert "Split the a|b pool and add a retry" in cells and "1 h 30 min" in cells and "SEV2" in cells
    assert "connection pool" in page.texts("strong") and "config push" in page.texts("em")
    assert "Roll back the push" in page.texts("ol") and "Verified by the on-call." in page.texts("blockquote")
    links = {attrs["href"]: attrs for tag, attrs in page.tags if tag == "a"}
    assert links["https://runbooks.example.com/pool"]["rel"] == "noopener noreferrer nofollow"
    assert "https://acme.pagerduty.com/incidents/PABC123" in links


@pytest.mark.parametrize("language, lang", [(EN, "en"), (ZH, "zh-CN")])
def test_html_is_a_standalone_document_with_a_strict_policy(language, lang):
    document = export_html(report(language))
    assert document.startswith("<!DOCTYPE html>\n")
    page = parse(document)
    [(_, html_attrs)] = [t for t in page.tags if t[0] == "html"]
    assert html_attrs == {"lang": lang}
    metas = [attrs for tag, attrs in page.tags if tag == "meta"]
    assert {"charset": "utf-8"} in metas
    [csp] = [m["content"] for m in metas if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert "script-src" not in directives and "unsafe" not in csp
    # Our one stylesheet is allowed by its exact hash.
    stylesheet = re.search(r"<style>(.*?)</style>", document, re.S)
    assert stylesheet is not None
    style = stylesheet.group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert directives["style-src"] == f"'sha256-{digest}'"
    assert directives["img-src"] == "https:" and directives["base-uri"] == "'none'"
    assert {"name": "referrer", "content": "no-referrer"} in metas
    assert page.texts("title") == report(language).title
    if language == ZH:
        assert "关键指标" in page.texts("h2")


# --- JSON ---------------------------------------------------------------------------------------------------


def test_json_round_trips_without_raw_payloads():
    real = pagerduty_event().incident
    assert real.raw  # the webhook delivery is kept on the incident as evidence...
    pm = report(ZH, incidents=[real], action_items=[action_item()], bodies={"root_cause": RICH_BODY[ZH]})
    exported = export_json(pm)
    assert isinstance(exported, bytes)
    text = exported.decode("utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, ensure_ascii=False, indent=2) + "\n"  # sorted keys, stable form
    assert "摘要" in text and "\\u" not in text  # UTF-8, not escaped
    # ...but never leaves in an export.
    assert "raw" not in data["postmortem"]["incidents"][0]
    assert "01BZYH1JJY09P9LEIST8HG2PMN" not in text and "escalation_policies" not in text
    assert Postmortem.model_validate(data["postmortem"]) == pm.model_copy(
        update={"incidents": [i.summary() for i in pm.incidents]}
    )
    assert [s["key"] for s in data["postmortem"]["sections"]] == [s.key for s in pm.sections]
    assert data["postmortem"]["sections"][2]["body"] == RICH_BODY[ZH]
    assert data["postmortem"]["metrics"]["highest_severity"] == "SEV2"
    assert data["postmortem"]["action_items"][0]["due_date"] == "2024-03-20"
    assert data["postmortem"]["metrics"]["responders"] == pm.metrics.responders  # who responded: for readers


def test_json_leaves_out_the_teams_working_blocks_as_the_markdown_does():
    unread = "- ⚠ PagerDuty could not be read for incident P1: PagerDuty answered 404 Not Found"
    base = report(EN)
    timeline = next(s for s in base.sections if s.key == "timeline")
    similar = SimilarReport(
        id="pm-0",
        title="Checkout pool exhausted (last spring)",
        status=Status.PUBLISHED,
        created_at=NOW,
        services=["checkout"],
        score=0.8,
        open_action_items=["Alert on pool saturation"],
    )
    pm = report(EN, bodies={"timeline": f"{unread}\n{timeline.body}"}, similar=[similar])
    m = meeting(attendees=[Attendee(email="carol@acme.example", name="Carol Jones")])
    team_view = render_markdown(pm, m)
    assert "carol@acme.example" in team_view and similar.title in team_view and "404 Not Found" in team_view
    text = export_json(pm).decode("utf-8")
    data = json.loads(text)
    assert set(data) == {"postmortem"}  # no meeting: its attendees, organizer, video link and agenda are logistics
    for internal in (
        "carol@acme.example",
        "Carol Jones",
        "pm-bot@acme.example",
        "meet.acme.example",
        m.uid,
        "Incident recap",
    ):
        assert internal not in text, internal
    assert "similar" not in data["postmortem"] and similar.title not in text and "Alert on pool saturation" not in text
    assert "⚠" not in text and "404 Not Found" not in text
    assert not {"problems", "gather", "errors"} & set(data["postmortem"])
    exported_timeline = next(s for s in data["postmortem"]["sections"] if s["key"] == "timeline")
    assert exported_timeline["body"] == timeline.body.strip("\n"), "the timeline itself stays"
    assert next(s for s in pm.sections if s.key == "timeline").body.startswith(unread)  # the caller's report as it was


# --- PDF ------------------------------------------------------------------------------------------------------

FOOTER = re.compile(r"^\s*(Page \d+|第 \d+ 页)\s*$", re.M)
_md = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def plain_fragments(markdown: str) -> list[str]:
    """The visible text of each block of some Markdown (what a reader sees, without the syntax)."""
    fragments = []
    for token in _md.parse(markdown):
        if token.type == "inline":
            text = "".join(c.content for c in token.children or [] if c.type in {"text", "code_inline"})
            if text.strip():
                fragments.append(text)
        elif token.type in {"fence", "code_block"}:
            fragments.append(token.content)
    return fragments


def extracted(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    pages = [FOOTER.sub("", page.extract_text()) for page in reader.pages]
    return reader, squash("".join(pages))


def pdf_report(language):
    items = [
        action_item(),
        action_item(
            id="ai-2",
            description="给连接池加告警 and alert on saturation",
            owner="张伟",
            priority=Priority.LOW,
            status=ActionItemStatus.COMPLETED,
            due_date=None,
        ),
    ]
    return report(language, action_items=items, bodies={"root_cause": RICH_BODY[language]})


@pytest.mark.parametrize("language", [EN, ZH])
def test_pdf_has_every_section_and_table(language):
    pm, m = pdf_report(language), meeting()
    pdf = export_pdf(pm, m)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    reader, text = extracted(pdf)
    assert len(reader.pages) >= 1
    assert reader.metadata is not None and reader.metadata.title == pm.title
    assert squash(pm.title) in text
    markdown = export_markdown(pm, m)
    for section in pm.sections:
        assert squash(section.title) in text, section.title
        for fragment in plain_fragments(section.body):
            assert squash(fragment) in text, (section.key, fragment)
    # Every fragment of the whole report, the key-metrics and action-item tables and the meeting included.
    for fragment in plain_fragments(markdown):
        assert squash(fragment) in text, fragment
    labels = {
        EN: ["Key metrics", "Highest severity", "Total impact duration", "Action item", "Owner"],
        ZH: ["关键指标", "最高严重级别", "总影响时长", "行动项", "负责人"],
    }[language]
    done = {EN: "COMPLETED", ZH: "已完成"}[language]
    for label in labels + ["Splitthea|bpoolandaddaretry", "给连接池加告警andalertonsaturation", "张伟", done]:
        assert squash(label) in text, label
    assert "**" not in text and "](" not in text and "|---|" not in text  # rendered, not Markdown source
    if language == ZH:
        assert "根本原因与促成因素" in text and "配置推送后连接池被耗尽" in text


@pytest.mark.parametrize("language", [EN, ZH])
def test_pdf_pages_have_embedded_fonts_and_render(language):
    """pdftoppm is not on these machines; PDFium (pypdfium2, Chrome's PDF engine) renders every page instead."""
    pm = pdf_report(language)
    pdf = export_pdf(pm, meeting())
    reader = PdfReader(io.BytesIO(pdf))
    for page in reader.pages:
        assert (contents := page.get_contents()) is not None and len(contents.get_data()) > 100
        resources: Any = page["/Resources"]  # pypdf types its object graph as a plain PdfObject
        fonts = resources["/Font"]
        assert fonts
        for ref in fonts.values():
            font = ref.get_object()
            if font["/Subtype"] == "/TrueType":  # ours: embedded, with a ToUnicode map for extraction
                assert "/FontFile2" in font["/FontDescriptor"].get_object()
                assert "/ToUnicode" in font
    document = pdfium.PdfDocument(pdf)
    try:
        assert len(document) == len(reader.pages)
        for index in range(len(document)):
            page = document[index]
            bitmap = page.render(scale=0.5, grayscale=True).to_pil()
            ink = sum(1 for value in bitmap.tobytes() if value < 160)
            assert ink > 500, (index, ink)  # not a blank page
            assert page.get_textpage().get_text_range().strip()
        first_page_text = document[0].get_textpage().get_text_range()
        assert pm.sections[0].title in first_page_text or pm.title in first_page_text
    finally:
        document.close()


def _glyphs(name: str) -> dict[int, int]:
    font = pdfmetrics.getFont(name)
    assert isinstance(font, TTFont)
    return font.face.charToGlyph


def test_pdf_font_has_a_glyph_for_every_character_of_a_chinese_report():
    pm = pdf_report(ZH)
    export_pdf(pm)  # registers the fonts
    glyphs = _glyphs("PostmortemSans")
    missing = {c for c in export_markdown(pm, meeting()) if not c.isspace() and ord(c) not in glyphs}
    assert not missing


# The draft's own "⚠ … could not be read" lines stay out of exports; a person writes the sign too.
WARNING_TEXT = "⚠ The failover was never tested. ✓ Fixed in the runbook."


@pytest.mark.parametrize("language", [EN, ZH])
def test_draft_pdf_sets_the_warning_sign_in_a_font_that_has_it(language):
    """ "⚠" was an empty box: Kurinto Sans SC has no glyph for it. Each character is set in a face that
    has one (PDFium says which font it drew the character with)."""
    pm = report(
        language, status=Status.DRAFT, bodies={"summary": WARNING_TEXT, "lessons_learned": f"**{WARNING_TEXT}**"}
    )
    pdf = export_pdf(pm)
    for char in "⚠✓":
        face = covering_font(char)
        assert ord(char) in _glyphs(face), (char, face)
    document = pdfium.PdfDocument(pdf)
    try:
        seen: dict[str, str] = {}
        for index in range(len(document)):
            textpage = document[index].get_textpage()
            for n in range(textpage.count_chars()):
                char = chr(pdfium_c.FPDFText_GetUnicode(textpage, n))
                if char in "⚠✓" and char not in seen:
                    buffer = ctypes.create_string_buffer(128)
                    flags = ctypes.c_int()
                    pdfium_c.FPDFText_GetFontInfo(textpage, n, buffer, 128, ctypes.byref(flags))
                    seen[char] = buffer.value.decode()
        assert set(seen) == {"⚠", "✓"}, seen
        for char, font in seen.items():
            assert font.endswith("KurintoSans-Regular") or "KurintoSans" in font and "SC" not in font, (char, font)
    finally:
        document.close()


def test_pdf_long_report_spans_pages_and_is_reproducible():
    items = [
        action_item(id=f"ai-{n}", description=f"Action number {n}: 为第 {n} 个服务增加容量告警", owner=f"owner-{n}")
        for n in range(60)
    ]
    pm = report(ZH, action_items=items, bodies={"lessons_learned": "经验很长。" * 400})
    pdf = export_pdf(pm)
    reader, text = extracted(pdf)
    assert len(reader.pages) > 2
    for n in range(60):
        assert squash(f"Action number {n}: 为第 {n} 个服务增加容量告警") in text
    assert "经验很长。" * 400 in text
    assert export_pdf(pm) == pdf  # no timestamps or random ids: the same report gives the same bytes


# --- public summary ------------------------------------------------------------------------------------------


def summary_report(language=EN, **bodies):
    base = {
        "summary": "Checkout failed for some customers. Alice Smith paged bob and 张伟 at 07:31:05; "
        "db-3.prod.internal (10.20.30.40:5432) ran out of connections. Ask alice@acme.example or "
        "oncall@payments.acme.example. Details: http://grafana.mon.corp:3000/d/abc?x=1 and "
        "https://status.example.com/incidents/42. Ticket INC-4521, cluster kube-7.svc.cluster.local.",
        "impact": "About 12% of checkouts failed in eu-west; 张伟在payments-api.internal上确认了影响。"
        " Hosts cache1.local, fe80::1 and 2001:db8::8a2e:370:7334 were restarted. Version v1.2.3 is fine.",
        "resolution": "Carol rolled back build 8812 on 192.168.0.12; carol.jones@acme.example confirmed.",
        "root_cause": "SECRET-ROOT-CAUSE: an unreviewed change by dave.",
        "timeline": "SECRET-TIMELINE",
    }
    base.update(bodies)
    owners = [action_item(id="ai-1", owner="Carol Jones"), action_item(id="ai-2", owner="bob")]
    pm = report(language, bodies=base, action_items=owners)
    return pm.model_copy(update={"title": "2024-03-10 Checkout errors on db-3.prod.internal"})


def test_public_summary_keeps_the_facts_and_redacts_the_internals():
    pm = summary_report()
    text = public_summary(pm, redact=[r"INC-\d+", r"build \d+"], people=["dave", "张伟"])
    lines = text.splitlines()
    assert lines[0] == "# 2024-03-10 Checkout errors on [redacted]"
    assert (
        "- **Impact window:** 2024-03-10 07:30 CST (2024-03-09 23:30 UTC) – 2024-03-10 09:00 CST (01:00 UTC)" in lines
    )
    assert "- **Duration:** 1 h 30 min" in lines
    assert "- **Affected services:** API Service" in lines
    assert [line for line in lines if line.startswith("## ")] == ["## Summary", "## Impact", "## Resolution"]
    for gone in [
        "Alice",
        "Smith",
        "bob",
        "张伟",
        "alice@",
        "oncall@",
        "carol",
        "Carol",
        "Jones",
        "db-3",
        "prod.internal",
        "10.20.30.40",
        "5432",
        "grafana",
        "mon.corp",
        "INC-4521",
        "8812",
        "kube-7",
        "cluster.local",
        "payments-api",
        "cache1",
        "fe80",
        "2001:db8",
        "192.168",
        "SECRET",
        "dave",
    ]:
        assert gone not in text, gone
    for kept in [
        "Checkout failed for some customers.",
        "at 07:31:05;",
        "ran out of connections.",
        "https://status.example.com/incidents/42",
        "About 12% of checkouts failed in eu-west",
        "确认了影响。",
        "Version v1.2.3 is fine.",
        "rolled back",
    ]:
        assert kept in text, kept
    assert "[redacted] paged [redacted] and [redacted] at 07:31:05; [redacted] ([redacted]) ran out" in text
    assert "Ask [redacted] or [redacted]. Details: [redacted] and https://status" in text
    assert "Ticket [redacted], cluster [redacted]." in text
    assert "[redacted] rolled back [redacted] on [redacted]; [redacted] confirmed." in text


def test_public_summary_in_chinese_redacts_next_to_cjk_characters():
    pm = summary_report(ZH, summary="张伟在db-3.prod.internal上发现10.0.0.7异常，联系alice@acme.example处理。")
    text = public_summary(pm, people=["张伟"])
    assert "## 摘要" in text and "## 影响" in text and "## 解决方案" in text
    assert "- **影响时段：** 2024-03-10 07:30 CST (2024-03-09 23:30 UTC) – 2024-03-10 09:00 CST (01:00 UTC)" in text
    assert "- **持续时长：** 1 小时 30 分钟" in text
    assert "[redacted]在[redacted]上发现[redacted]异常，联系[redacted]处理。" in text
    assert "根本原因" not in text and "SECRET" not in text


def test_public_summary_redaction_never_matches_inside_its_own_marker():
    pm = summary_report(summary="Red team drill: act fast.", impact="", resolution="")
    text = public_summary(pm, redact=["act"], people=["Red", "ed"])
    assert "[redacted] team drill: [redacted] fast." in text
    summary = text.split("## Summary", 1)[1]
    assert summary.count("[redacted]") == 2  # "act" and "ed" found nothing inside the markers themselves
    assert "## Impact" not in text and "## Resolution" not in text  # empty sections are left out


def test_public_summary_knows_people_by_label_and_email_only_when_they_are_people():
    anonymous = incident(responders=[Person(), Person(email="eve@acme.example")], resolved_by=None)
    pm = report(
        EN, incidents=[anonymous], bodies={"summary": "Cause unknown at first; eve@acme.example and Eve helped."}
    )
    assert pm.metrics.responders == ["eve@acme.example"]  # a person with no name, email or id is no one
    text = public_summary(pm)
    assert "Cause unknown at first; [redacted] and Eve helped." in text  # "unknown" is no one's name


def test_public_summary_without_times_or_sections():
    no_times = incident(created_at=None, acknowledged_at=None, resolved_at=None, services=[])
    pm = report(EN, incidents=[no_times], variant=TemplateVariant.LIGHTWEIGHT, services=[])
    text = public_summary(pm)
    assert "- **Impact window:** unknown – ongoing" in text
    assert "- **Duration:** —" in text and "- **Affected services:** —" in text
    assert "## Impact" not in text  # the lightweight template has no Impact section
