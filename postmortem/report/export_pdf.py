"""The PDF export: reportlab's platypus lays out the markdown-it token tree of the Markdown export.

Headings, paragraphs, nested lists, quotes, code and tables that wrap and split across pages. The
text is set in Kurinto Sans SC (SIL OFL 1.1, TrueType outlines, Latin + simplified Chinese, regular
and bold), shipped on PyPI by the `weblate-fonts` package. The font is *embedded* (subset) with a
ToUnicode map, so the PDF looks the same in every reader and its text can be extracted and
searched. reportlab's built-in CID font `STSong-Light` needs no file but is never embedded: a reader
without Adobe's Asian font pack (most Linux viewers and headless renderers) then substitutes a font
or shows nothing, so it is not used. reportlab is imported inside the functions: only a PDF needs it.
"""

from __future__ import annotations

import html
import io
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from markdown_it.tree import SyntaxTreeNode

from postmortem.meeting.models import Meeting
from postmortem.models import Language, Postmortem
from postmortem.report.exports import SAFE_URL, export_markdown, html_lang, markdown_parser

__all__ = ["FONT_FILES", "covering_font", "export_pdf", "font_path"]

_FONT = "PostmortemSans"
_FONT_BOLD = "PostmortemSans-Bold"
# Kurinto Sans SC has no symbols such as "⚠" or "✓" (an empty box in the PDF); Kurinto Sans, the same
# family's Latin face in the same package, has them: a character the SC face lacks is set in it.
_SYMBOLS = "PostmortemSymbols"
_SYMBOLS_BOLD = "PostmortemSymbols-Bold"
_FONT_DIR = "static/weblate_fonts/kurinto/ttf"
FONT_FILES = {
    _FONT: "KurintoSansSC-Rg.ttf",
    _FONT_BOLD: "KurintoSansSC-Bd.ttf",
    _SYMBOLS: "KurintoSans-Rg.ttf",
    _SYMBOLS_BOLD: "KurintoSans-Bd.ttf",
}


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
    addMapping(_FONT, 0, 0, _FONT)
    addMapping(_FONT, 0, 1, _FONT)
    addMapping(_FONT, 1, 0, _FONT_BOLD)
    addMapping(_FONT, 1, 1, _FONT_BOLD)
    addMapping(_SYMBOLS, 0, 0, _SYMBOLS)
    addMapping(_SYMBOLS, 0, 1, _SYMBOLS)
    addMapping(_SYMBOLS, 1, 0, _SYMBOLS_BOLD)
    addMapping(_SYMBOLS, 1, 1, _SYMBOLS_BOLD)


@cache
def _covered() -> frozenset[int]:
    """The code points the main face has a glyph for."""
    from reportlab.pdfbase import pdfmetrics

    _register_fonts()
    font: Any = pdfmetrics.getFont(_FONT)
    return frozenset(font.face.charToGlyph)


def covering_font(char: str) -> str:
    """The registered font a character is set in: the main face, else the symbols face."""
    return _FONT if char.isspace() or ord(char) in _covered() else _SYMBOLS


_PDF_LABELS = {Language.EN: "Page {n}", Language.ZH: "第 {n} 页"}


def _xml(text: str) -> str:
    """`text` as paragraph markup: escaped, and each run of characters the main face lacks set in the
    symbols face."""
    covered = _covered()
    parts: list[str] = []
    run: list[str] = []
    for char in text:
        if char.isspace() or ord(char) in covered:
            if run:
                parts.append(f'<font name="{_SYMBOLS}">{html.escape("".join(run), quote=True)}</font>')
                run = []
            parts.append(html.escape(char, quote=True))
        else:
            run.append(char)
    if run:
        parts.append(f'<font name="{_SYMBOLS}">{html.escape("".join(run), quote=True)}</font>')
    return "".join(parts)


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
                if SAFE_URL.match(href):
                    parts.append(f'<a href="{html.escape(href, quote=True)}" color="#0645ad">{text}</a>')
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
                text = _xml(node.content.rstrip("\n").replace(" ", "\u00a0")).replace("\n", "<br/>")
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
        # reportlab takes ListItems here; its stubs admit only flowables
        return ListFlowable(items, leftIndent=indent, bulletFontName=_FONT, bulletFontSize=10, **options)  # type: ignore[arg-type]

    def table(self, node: SyntaxTreeNode, width: float) -> Any:
        from reportlab.lib import colors
        from reportlab.platypus import Paragraph, Table, TableStyle

        rows: list[list[Any]] = []
        lengths: list[list[int]] = []
        for section in node.children:  # thead, tbody
            for row_node in section.children:
                cells = row_node.children
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
        lang=html_lang(pm.language),
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

    tree = SyntaxTreeNode(markdown_parser().parse(export_markdown(pm, meeting)))
    builder = _PdfBuilder(pm.language, doc.width)
    doc.build(builder.blocks(tree.children, doc.width), onFirstPage=page_number, onLaterPages=page_number)
    return buffer.getvalue()
