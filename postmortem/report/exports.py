"""The text exports of a published report: Markdown, standalone HTML (and its sanitiser) and JSON.

Every export is a pure function of the stored post-mortem (and its review meeting, when there is one).
The Markdown report from `render_markdown` is the single source of the report's content; HTML and
the PDF (`export_pdf.py`) are renderings of it, through the one markdown-it parser made here. The
public summary, a different text with its own redaction, is in `public_summary.py`.

HTML: markdown-it-py (CommonMark, tables and strikethrough on, raw HTML *off*) renders the Markdown,
then nh3 (Python binding of the Rust sanitiser ammonia, an html5ever-based allowlist sanitiser)
cleans the result. See `export_html` for the sanitiser policy.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from typing import Any

import nh3
from markdown_it import MarkdownIt

from postmortem.meeting.models import Meeting
from postmortem.models import Language, Postmortem
from postmortem.report.rendering import body_for_readers, render_markdown

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SAFE_URL",
    "export_html",
    "export_json",
    "export_markdown",
    "html_lang",
    "markdown_parser",
    "sanitise_html",
]


# --- Markdown ------------------------------------------------------------------------------------


def export_markdown(pm: Postmortem, meeting: Meeting | None = None) -> str:
    """The report as Markdown for its readers (`render_markdown(for_readers=True)`), never with helper prompts.

    `render_markdown` shows each section's prompt (as a `> ` quote) only while the report is a DRAFT
    and only when the prompt is not empty. An export is a finished document, so the prompts are
    blanked on a copy of the report; everything else, the status line included, is unchanged.
    """
    without_prompts = pm.model_copy(update={"sections": [s.model_copy(update={"prompt": ""}) for s in pm.sections]})
    return render_markdown(without_prompts, meeting, for_readers=True)


def markdown_parser() -> MarkdownIt:
    """The one parser of the Markdown export, for the HTML and the PDF alike."""
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

SAFE_URL = re.compile(r"^(?:https?://|mailto:)[^\s\x00-\x1f\x7f]*$", re.IGNORECASE)
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
        return value if SAFE_URL.match(value.strip()) else None
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


def html_lang(language: Language) -> str:
    return "zh-CN" if language == Language.ZH else "en"


def export_html(pm: Postmortem, meeting: Meeting | None = None) -> str:
    """A complete, standalone HTML5 document of the report, safe to open in any browser.

    The Markdown export is rendered by markdown-it-py with raw HTML disabled (HTML typed into a report
    shows as text), then sanitised by `sanitise_html`. The document declares UTF-8, its language
    (`en` or `zh-CN`), a `no-referrer` policy and `CONTENT_SECURITY_POLICY` as a <meta>: default-src
    'none', our one inline stylesheet by hash, https images, and no script source at all.
    """
    body = sanitise_html(markdown_parser().render(export_markdown(pm, meeting)))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{html_lang(pm.language)}">\n'
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


def export_json(pm: Postmortem) -> bytes:
    """The report as data for its readers: `{"postmortem": …}`, UTF-8, sorted keys, indented.

    It leaves out what the Markdown export does, the team's working blocks: the review meeting
    (attendees, video link), the similar past reports, the Timeline's notes about unreadable sources;
    and each incident's `raw` webhook payload (source internals, sometimes personal data). The rest
    validates back into a `Postmortem`.
    """
    sections = [s.model_copy(update={"body": body_for_readers(s.body, s.key)}) for s in pm.sections]
    readers = pm.model_copy(update={"sections": sections})
    data = {"postmortem": readers.model_dump(mode="json", exclude={"similar": True, "incidents": {"__all__": {"raw"}}})}
    return (json.dumps(data, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
