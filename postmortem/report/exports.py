"""The final exports of a published report: Markdown, standalone HTML, JSON, PDF and a public summary.

Every export is a pure function of the stored post-mortem (and its review meeting, when there is one):
no I/O beyond reading the font files that ship inside an installed package. The Markdown report from
`render_markdown` is the single source of the report's content; HTML and PDF are renderings of it.

Libraries and why:

* HTML: markdown-it-py (CommonMark, tables and strikethrough on, raw HTML *off*) renders the Markdown,
  then nh3 (Python binding of the Rust sanitiser ammonia, an html5ever-based allowlist sanitiser)
  cleans the result. See `export_html` for the sanitiser policy.
* PDF: reportlab's platypus lays out the same markdown-it token tree (headings, paragraphs, nested
  lists, quotes, code, tables that wrap and split across pages). The text is set in Kurinto Sans SC
  (SIL OFL 1.1, TrueType outlines, Latin + simplified Chinese, regular and bold), shipped on PyPI by the
  `weblate-fonts` package. The font is *embedded* (subset) with a ToUnicode map, so the PDF looks the
  same in every reader and its text can be extracted and searched. reportlab's built-in CID font
  `STSong-Light` needs no file but is never embedded: a reader without Adobe's Asian font pack (most
  Linux viewers and headless renderers) then substitutes a font or shows nothing, so it is not used.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from postmortem.meeting.models import Meeting
from postmortem.models import Language, Postmortem
from postmortem.report.formatting import format_duration, format_local
from postmortem.report.rendering import render_markdown

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "REDACTED",
    "export_html",
    "export_json",
    "export_markdown",
    "export_pdf",
    "public_summary",
    "sanitise_html",
]

REDACTED = "[redacted]"


# --- Markdown ------------------------------------------------------------------------------------


def export_markdown(pm: Postmortem, meeting: Meeting | None = None) -> str:
    """The report as Markdown, exactly as `render_markdown` writes it, but never with helper prompts.

    `render_markdown` shows each section's prompt (as a `> ` quote) only while the report is a DRAFT
    and only when the prompt is not empty. An export is a finished document, so the prompts are
    blanked on a copy of the report; everything else, the status line included, is unchanged.
    """
    without_prompts = pm.model_copy(update={"sections": [s.model_copy(update={"prompt": ""}) for s in pm.sections]})
    return render_markdown(without_prompts, meeting)


def _markdown_parser() -> MarkdownIt:
    # Raw HTML is off: `<script>` written in a report is shown as the text `<script>`, never parsed as
    # markup. markdown-it's own link validation also drops javascript:, vbscript:, file: and data:
    # (except a few image types) URLs; the sanitiser below is the second, independent wall.
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"]
    )
    parser.add_render_rule("image", _render_image)
    return parser


def _render_image(renderer: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
    """An image the policy would not load (anything but https) is written as its alt text instead."""
    token = tokens[idx]
    if _SAFE_IMAGE.match(str(token.attrGet("src") or "")):
        return str(renderer.image(tokens, idx, options, env))
    return html.escape(renderer.renderInlineAsText(token.children or [], options, env), quote=False)


# --- HTML ----------------------------------------------------------------------------------------

_SAFE_URL = re.compile(r"^(?:https?://|mailto:)[^\s\x00-\x1f\x7f]*$", re.IGNORECASE)
_SAFE_IMAGE = re.compile(r"^https://[^\s\x00-\x1f\x7f]*$", re.IGNORECASE)

_ALLOWED_TAGS = {
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
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
_LINK_REL = "noopener noreferrer nofollow"

_STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK SC", "PingFang SC",
       "Microsoft YaHei", sans-serif; line-height: 1.55; color: #1f2328; margin: 0; }
main { max-width: 60rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.8rem; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.35rem; margin-top: 2em; border-bottom: 1px solid #d8dee4; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; width: 100%; }
th, td { border: 1px solid #d0d7de; padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; background: #f6f8fa; }
pre { padding: .8em; overflow-x: auto; white-space: pre-wrap; }
blockquote { margin: 0; padding: 0 1em; color: #59636e; border-left: .25em solid #d0d7de; }
img { max-width: 100%; }
a { color: #0969da; }
""".strip()

# The only stylesheet is ours, allowed by its hash (not 'unsafe-inline'), so even a style attribute or
# element that slipped past the sanitiser would not apply. No script-src at all: with default-src
# 'none' no script of any kind runs. Images load over https only (no data:, no http); base-uri and
# form-action close the remaining ways to point the page elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()}'; "
    "img-src https:; base-uri 'none'; form-action 'none'"
)


def _url_filter(tag: str, attribute: str, value: str) -> str | None:
    """Keep href only when it is an absolute http(s) or mailto URL, src only when https; other attributes as is."""
    if attribute == "href":
        return value if _SAFE_URL.match(value.strip()) else None
    if attribute == "src":
        return value if _SAFE_IMAGE.match(value.strip()) else None
    if attribute == "start":
        return value if value.isdigit() else None
    return value


def sanitise_html(fragment: str) -> str:
    """Clean an HTML fragment with nh3: an allowlist of tags and attributes, http(s)/mailto URLs only.

    Policy: only the tags Markdown produces (headings, paragraphs, lists, quotes, code, emphasis,
    tables, links, images) survive; no `style`, `class`, `id` or event-handler attribute survives on
    any tag; `script`/`style` elements are removed *with* their content, any other tag outside the list
    (iframe, object, embed, svg, math, form…) is dropped and its text kept as text. `href` must be an
    absolute http://, https:// or mailto: URL and `src` an https:// URL (no relative, javascript:,
    vbscript:, data:, file:); links get rel="noopener noreferrer nofollow"; comments are stripped.
    """
    return nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=_ALLOWED_ATTRIBUTES,
        attribute_filter=_url_filter,
        url_schemes={"http", "https", "mailto"},
        link_rel=_LINK_REL,
        strip_comments=True,
    )


def _html_lang(language: Language) -> str:
    return "zh-CN" if language == Language.ZH else "en"


def export_html(pm: Postmortem, meeting: Meeting | None = None) -> str:
    """A complete, standalone HTML5 document of the report, safe to open in any browser.

    The Markdown export is rendered by markdown-it-py with raw HTML disabled (HTML typed into a report
    shows as text), then sanitised by `sanitise_html`. The document declares UTF-8, its language
    (`en` or `zh-CN`), a `no-referrer` policy and `CONTENT_SECURITY_POLICY` as a <meta>: default-src
    'none', our one inline stylesheet by hash, https images, and no script source at all.
    """
    body = sanitise_html(_markdown_parser().render(export_markdown(pm, meeting)))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{_html_lang(pm.language)}">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(pm.title)}</title>\n"
        f"<style>{_STYLE}</style>\n"
        "</head>\n"
        "<body>\n<main>\n"
        f"{body}"
        "</main>\n</body>\n</html>\n"
    )


# --- JSON ----------------------------------------------------------------------------------------


def export_json(pm: Postmortem, meeting: Meeting | None = None) -> bytes:
    """The report as data: `{"postmortem": …, "meeting": … or null}`, UTF-8, sorted keys, indented.

    `postmortem` is `pm.model_dump(mode="json")` *without* each incident's `raw` webhook payload: the
    payloads are internal evidence (source-system internals, sometimes personal data) and stay in the
    store; everything else, section prompts included, is kept so the export validates back into a
    `Postmortem` (with empty `raw`).
    """
    data = {
        "postmortem": pm.model_dump(mode="json", exclude={"incidents": {"__all__": {"raw"}}}),
        "meeting": meeting.model_dump(mode="json") if meeting is not None else None,
    }
    return (json.dumps(data, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --- PDF -----------------------------------------------------------------------------------------

_FONT = "PostmortemSans"
_FONT_BOLD = "PostmortemSans-Bold"
_FONT_DIR = "static/weblate_fonts/kurinto/ttf"
FONT_FILES = {_FONT: "KurintoSansSC-Rg.ttf", _FONT_BOLD: "KurintoSansSC-Bd.ttf"}


def font_path(name: str = _FONT) -> Any:
    """Where the installed `weblate-fonts` package keeps the TrueType file for `name`."""
    return resources.files("weblate_fonts").joinpath(_FONT_DIR, FONT_FILES[name])


@cache
def _register_fonts() -> None:
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for name in FONT_FILES:
        with resources.as_file(font_path(name)) as path:
            pdfmetrics.registerFont(TTFont(name, str(path)))
    # No italic face ships for CJK: emphasis keeps the upright face.
    for bold, italic, face in ((0, 0, _FONT), (0, 1, _FONT), (1, 0, _FONT_BOLD), (1, 1, _FONT_BOLD)):
        addMapping(_FONT, bold, italic, face)


_PDF_LABELS = {Language.EN: "Page {n}", Language.ZH: "第 {n} 页"}


def _xml(text: str) -> str:
    return html.escape(text, quote=True)


class _PdfBuilder:
    """Turns a markdown-it syntax tree into reportlab flowables."""

    def __init__(self, language: Language, width: float) -> None:
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle

        self.width = width
        wrap = "CJK" if language == Language.ZH else None
        base = ParagraphStyle("body", fontName=_FONT, fontSize=10, leading=14.5, spaceAfter=5, wordWrap=wrap)
        self.body = base
        self.cell = ParagraphStyle("cell", parent=base, fontSize=9, leading=12, spaceAfter=0)
        self.head_cell = ParagraphStyle("head_cell", parent=self.cell, fontName=_FONT_BOLD)
        self.code = ParagraphStyle(
            "code",
            parent=base,
            fontSize=8.5,
            leading=11.5,
            backColor=colors.HexColor("#f6f8fa"),
            borderPadding=4,
            leftIndent=4,
            rightIndent=4,
            spaceBefore=6,
            spaceAfter=10,
        )
        self.quote = ParagraphStyle("quote", parent=base, textColor=colors.HexColor("#59636e"))
        self.headings = {
            1: ParagraphStyle("h1", parent=base, fontName=_FONT_BOLD, fontSize=18, leading=23, spaceAfter=8),
            2: ParagraphStyle(
                "h2",
                parent=base,
                fontName=_FONT_BOLD,
                fontSize=13.5,
                leading=18,
                spaceBefore=12,
                spaceAfter=6,
                textColor=colors.HexColor("#1f3a5f"),
            ),
            3: ParagraphStyle(
                "h3", parent=base, fontName=_FONT_BOLD, fontSize=11.5, leading=15, spaceBefore=8, spaceAfter=4
            ),
        }

    # inline ---------------------------------------------------------------------------------------

    def inline(self, node: SyntaxTreeNode) -> str:
        parts: list[str] = []
        for child in node.children:
            kind = child.type
            if kind == "text":
                parts.append(_xml(child.content))
            elif kind == "softbreak":
                parts.append(" ")
            elif kind == "hardbreak":
                parts.append("<br/>")
            elif kind == "strong":
                parts.append(f"<b>{self.inline(child)}</b>")
            elif kind == "em":
                parts.append(f"<i>{self.inline(child)}</i>")
            elif kind == "s":
                parts.append(f"<strike>{self.inline(child)}</strike>")
            elif kind == "code_inline":
                parts.append(f'<font color="#8b1a1a">{_xml(child.content)}</font>')
            elif kind == "link":
                href = str(child.attrs.get("href", ""))
                text = self.inline(child)
                if _SAFE_URL.match(href):
                    parts.append(f'<a href="{_xml(href)}" color="#0645ad">{text}</a>')
                else:
                    parts.append(text)
            elif kind == "image":
                parts.append(_xml(child.content or ""))
            elif child.children:
                parts.append(self.inline(child))
            else:
                parts.append(_xml(child.content or ""))
        return "".join(parts)

    def _inline_of(self, node: SyntaxTreeNode) -> str:
        return "".join(self.inline(child) for child in node.children if child.type == "inline")

    # blocks ---------------------------------------------------------------------------------------

    def blocks(self, nodes: Iterable[SyntaxTreeNode], width: float) -> list[Any]:
        from reportlab.lib import colors
        from reportlab.platypus import HRFlowable, Indenter, Paragraph

        out: list[Any] = []
        for node in nodes:
            kind = node.type
            if kind == "heading":
                level = min(int(node.tag[1]), 3)
                out.append(Paragraph(self._inline_of(node), self.headings[level]))
            elif kind == "paragraph":
                out.append(Paragraph(self._inline_of(node), self.body))
            elif kind in {"bullet_list", "ordered_list"}:
                out.append(self.list(node, width))
            elif kind == "blockquote":
                saved, self.body = self.body, self.quote
                try:
                    out += [Indenter(left=14), *self.blocks(node.children, width - 14), Indenter(left=-14)]
                finally:
                    self.body = saved
            elif kind in {"fence", "code_block"}:
                text = _xml(node.content.rstrip("\n")).replace(" ", "&nbsp;").replace("\n", "<br/>")
                out.append(Paragraph(text, self.code))
            elif kind == "hr":
                out.append(HRFlowable(width="100%", color=colors.HexColor("#d0d7de"), spaceBefore=4, spaceAfter=8))
            elif kind == "table":
                out.append(self.table(node, width))
            elif kind == "inline":
                out.append(Paragraph(self.inline(node), self.body))
            elif node.children:
                out += self.blocks(node.children, width)
            elif node.content:
                out.append(Paragraph(_xml(node.content), self.body))
        return out

    def list(self, node: SyntaxTreeNode, width: float) -> Any:
        from reportlab.platypus import ListFlowable, ListItem

        ordered = node.type == "ordered_list"
        indent = 16
        items = [ListItem(self.blocks(item.children, width - indent) or [""]) for item in node.children]
        if ordered:
            options: dict[str, Any] = {
                "bulletType": "1",
                "bulletFormat": "%s.",
                "start": int(node.attrs.get("start") or 1),
            }
        else:
            options = {"bulletType": "bullet", "start": "•"}
        return ListFlowable(items, leftIndent=indent, bulletFontName=_FONT, bulletFontSize=10, **options)

    def table(self, node: SyntaxTreeNode, width: float) -> Any:
        from reportlab.lib import colors
        from reportlab.platypus import Paragraph, Table, TableStyle

        rows: list[list[Any]] = []
        lengths: list[list[int]] = []
        for section in node.children:  # thead, tbody
            for row in section.children:
                cells = row.children
                style = self.head_cell if section.type == "thead" else self.cell
                rows.append([Paragraph(self._inline_of(cell) or "", style) for cell in cells])
                lengths.append([len(_plain(cell)) for cell in cells])
        columns = max((len(row) for row in rows), default=0)
        if not columns:
            return Paragraph("", self.body)
        for row, row_lengths in zip(rows, lengths, strict=True):
            row += [Paragraph("", self.cell)] * (columns - len(row))
            row_lengths += [0] * (columns - len(row_lengths))
        # Columns share the width by their longest cell (capped), each keeping a usable minimum.
        weights = [min(max((row[i] for row in lengths), default=1), 60) + 4 for i in range(columns)]
        floor = width * min(0.1, 1 / columns)
        spare = width - floor * columns
        col_widths = [floor + spare * weight / sum(weights) for weight in weights]
        table = Table(rows, colWidths=col_widths, repeatRows=1 if node.children[0].type == "thead" else 0)
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#c8ced6")),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f3f6")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("TOPPADDING", (0, 0), (-1, -1), 3),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ]
            )
        )
        table.spaceAfter = 8
        return table


def _plain(node: SyntaxTreeNode) -> str:
    if node.type in {"text", "code_inline"}:
        return node.content
    return "".join(_plain(child) for child in node.children)


def export_pdf(pm: Postmortem, meeting: Meeting | None = None) -> bytes:
    """The report as an A4 PDF: every heading, paragraph, list and table of the Markdown export.

    Text is real text in an embedded, subset TrueType font (Kurinto Sans SC from `weblate-fonts`) that
    covers Latin and simplified Chinese, so English and Chinese reports print and extract alike.
    Chinese reports wrap anywhere between characters (reportlab's CJK line breaking); tables wrap
    inside their cells and repeat their header row on a new page. The document carries the report's
    title and language in its metadata, a page number in the footer, and is byte-for-byte
    reproducible (reportlab's `invariant` mode: no timestamps or random ids).
    """
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    _register_fonts()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=pm.title,
        subject="Post-mortem",
        creator="postmortem-autopilot",
        author=pm.team or "",
        lang=_html_lang(pm.language),
        invariant=1,
        displayDocTitle=1,
    )
    footer = _PDF_LABELS[pm.language]

    def page_number(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(_FONT, 8)
        canvas.setFillColor(colors.HexColor("#6e7781"))
        canvas.drawCentredString(A4[0] / 2, 10 * mm, footer.format(n=document.page))
        canvas.restoreState()

    tree = SyntaxTreeNode(_markdown_parser().parse(export_markdown(pm, meeting)))
    builder = _PdfBuilder(pm.language, doc.width)
    doc.build(builder.blocks(tree.children, doc.width), onFirstPage=page_number, onLaterPages=page_number)
    return buffer.getvalue()


# --- public summary ------------------------------------------------------------------------------

_SUMMARY_LABELS = {
    Language.EN: {
        "window": "Impact window:",
        "duration": "Duration:",
        "services": "Affected services:",
        "ongoing": "ongoing",
        "unknown": "unknown",
    },
    Language.ZH: {
        "window": "影响时段：",
        "duration": "持续时长：",
        "services": "受影响服务：",
        "ongoing": "仍在持续",
        "unknown": "未知",
    },
}
_PUBLIC_SECTIONS = ("summary", "impact", "resolution")

# Boundaries are ASCII on purpose: in Chinese text a host, address or name sits right next to CJK
# characters, which Python's Unicode \w would count as part of the same word.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9\-._~:/?#@!$&*+,;=%\[\]]+")
_IPV4 = re.compile(
    r"(?<![A-Za-z0-9_.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?:/\d{1,2})?(?::\d{1,5})?(?![A-Za-z0-9_.]*[A-Za-z0-9_])"
)
_IPV6 = re.compile(r"(?<![A-Za-z0-9_:.])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![A-Za-z0-9_:])", re.IGNORECASE)
_HOSTNAME = re.compile(
    r"(?<![A-Za-z0-9_.@-])(?:[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}(?::\d{1,5})?"
    r"(?![A-Za-z0-9_-])",
    re.IGNORECASE,
)
# Host names are "internal" when they end in a private-use suffix or carry an environment / private
# label anywhere (db-3.prod.acme.net). Public names such as status.example.com are kept.
_INTERNAL_SUFFIXES = (
    "internal",
    "local",
    "localdomain",
    "corp",
    "lan",
    "intranet",
    "intra",
    "private",
    "priv",
    "home.arpa",
    "localhost",
    "cluster",
    "svc",
)
_INTERNAL_LABELS = {
    "internal",
    "intranet",
    "intra",
    "corp",
    "prod",
    "production",
    "staging",
    "stage",
    "stg",
    "preprod",
    "dev",
    "qa",
    "uat",
    "mgmt",
    "infra",
    "private",
    "priv",
    "lan",
    "local",
    "svc",
}


def _is_internal_host(host: str) -> bool:
    host = host.lower().rstrip(".").split(":")[0]
    labels = host.split(".")
    if any(host == suffix or host.endswith("." + suffix) for suffix in _INTERNAL_SUFFIXES):
        return True
    return any(label in _INTERNAL_LABELS for label in labels[:-1])


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("/")[0])
    except ValueError:
        return False
    return True


def _name_patterns(names: Iterable[str]) -> list[re.Pattern[str]]:
    """Whole names case-insensitively, and each part of a multi-word name of 2+ letters as written."""
    terms: set[tuple[str, bool]] = set()
    for name in names:
        name = " ".join(name.split())
        if len(name) < 2:
            continue
        terms.add((name, True))
        parts = name.split(" ")
        if len(parts) > 1:
            terms.update((part, False) for part in parts if len(part) >= 2)
    patterns = []
    for term, ignore_case in sorted(terms, key=lambda t: -len(t[0])):
        body = re.escape(term)
        if term.isascii():  # Latin names stop at word boundaries; CJK names have none to stop at
            body = rf"(?<![A-Za-z0-9_]){body}(?![A-Za-z0-9_])"
        patterns.append(re.compile(body, re.IGNORECASE if ignore_case else 0))
    return patterns


def _people(pm: Postmortem, extra: Iterable[str]) -> tuple[list[str], list[str]]:
    """(names, emails) of everyone the report names: responders, resolvers, action-item owners, `extra`."""
    names: set[str] = set(pm.metrics.responders) | {item.owner for item in pm.action_items if item.owner}
    emails: set[str] = set()
    for incident in pm.incidents:
        for person in [*incident.responders, *([incident.resolved_by] if incident.resolved_by else [])]:
            if person.name:
                names.add(person.name)
            if person.email:
                emails.add(person.email)
    for value in extra:
        (emails if "@" in value else names).add(value)
    for value in list(names):  # a label may be an email (Person.label falls back to it)
        if "@" in value:
            emails.add(value)
    names.discard("unknown")  # Person.label's placeholder for nobody in particular, not a name
    return sorted(names), sorted(emails)


def _spans(text: str, patterns: Iterable[re.Pattern[str]]) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for pattern in patterns for m in pattern.finditer(text) if m.end() > m.start()]


def _redactor(pm: Postmortem, redact: Sequence[str], people: Sequence[str]) -> Callable[[str], str]:
    names, emails = _people(pm, people)
    custom = [re.compile(pattern) for pattern in redact]
    literal = _name_patterns(names) + [re.compile(re.escape(email), re.IGNORECASE) for email in emails]

    def apply(text: str) -> str:
        # Every rule finds its spans on the original text; overlapping spans merge and are replaced once,
        # so no rule ever matches inside another's "[redacted]".
        spans = _spans(text, custom) + _spans(text, literal) + _spans(text, [_EMAIL])
        for match in _URL.finditer(text):
            try:
                host = urlsplit(match.group()).hostname or ""
            except ValueError:  # a malformed URL (bad port, bad IPv6 literal) is not worth the risk
                host = "localhost"
            if _is_ip(host) or _is_internal_host(host):
                spans.append((match.start(), match.end()))
        spans += [(m.start(), m.end()) for m in _IPV4.finditer(text) if _is_ip(m.group().split(":")[0])]
        spans += [(m.start(), m.end()) for m in _IPV6.finditer(text) if _is_ip(m.group())]
        spans += [(m.start(), m.end()) for m in _HOSTNAME.finditer(text) if _is_internal_host(m.group())]
        if not spans:
            return text
        out, position = [], 0
        for start, end in _merge(spans):
            out += [text[position:start], REDACTED]
            position = end
        out.append(text[position:])
        return "".join(out)

    return apply


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def public_summary(pm: Postmortem, *, redact: Sequence[str] = (), people: Sequence[str] = ()) -> str:
    """The customer-facing status-page summary, in Markdown, in the report's language.

    It has the title, the impact window (impact start, else trigger, to resolution, each in the
    report's time zone with UTC alongside), the duration, the affected services, and the text of the
    Summary, Impact and Resolution sections (those the report has and has filled in). Root cause,
    timeline, detection, action items and lessons learned are internal and left out: a status page
    gives the short cause the Summary states, not the internals.

    Everything taken from the report (title, services, section text) is redacted; the labels and
    times this function writes are not. Replaced by "[redacted]":

    * every match of each regular expression in `redact` (Python `re` syntax, case-sensitive unless
      the pattern says `(?i)`; an invalid pattern raises `re.error`);
    * the names and emails of the people the report names — responders, who resolved, action-item
      owners — and of `people`: a full name case-insensitively, and each word of a multi-word name as
      written (so "Alice" of "Alice Smith" goes too);
    * any email address;
    * IPv4 (with optional /prefix and :port) and IPv6 addresses;
    * internal host names: dotted names ending in .internal, .local, .localdomain, .corp, .lan,
      .intranet, .intra, .private, .priv, .home.arpa, .cluster, .svc, or with an environment label such
      as prod, staging, dev, qa, corp, mgmt in them (db-3.prod.acme.net); a URL whose host is internal
      or an IP address goes whole. Public names (status.example.com) are kept.
    """
    labels = _SUMMARY_LABELS[pm.language]
    clean = _redactor(pm, redact, people)
    m = pm.metrics
    start = m.impact_started_at or m.started_at
    start_text = format_local(start, pm.timezone) if start else labels["unknown"]
    end_text = format_local(m.closed_at, pm.timezone) if m.closed_at else labels["ongoing"]
    services = pm.services or m.services
    lines = [
        f"# {clean(pm.title)}",
        "",
        f"- **{labels['window']}** {start_text} – {end_text}",
        f"- **{labels['duration']}** {format_duration(m.duration_seconds, pm.language) or '—'}",
        f"- **{labels['services']}** {clean(', '.join(services)) if services else '—'}",
    ]
    by_key = {section.key: section for section in pm.sections}
    for key in _PUBLIC_SECTIONS:
        section = by_key.get(key)
        if section is None or not section.body.strip():
            continue
        lines += ["", f"## {clean(section.title)}", "", clean(section.body.strip())]
    return "\n".join(lines) + "\n"
