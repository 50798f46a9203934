"""The co-edited form of a report's text: one Yjs document (pycrdt) per report.

Layout: a root Text "title" and one root Text "section:<key>" per section. Root types are named, so
two parties that create the same one (two replicas seeding, a browser before its first sync) get the
same object instead of two that conflict; the sections of a report are fixed by its template, so no
Map of them is needed. Pure: no I/O; the store and the WebSocket rooms call these.
"""

from __future__ import annotations

from difflib import SequenceMatcher

from pycrdt import Doc, Text

TITLE = "title"
SECTION = "section:"
SEED_CLIENT = 0  # every seeder writes the same bytes for the same text: a second seed adds nothing
DIFF_WINDOW = 4000  # characters: a larger changed middle is replaced as one range


def section_name(key: str) -> str:
    return f"{SECTION}{key}"


def text(doc: Doc, name: str) -> Text:
    return doc.get(name, type=Text)


def load(*updates: bytes) -> Doc:
    doc: Doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def seed(title: str, sections: dict[str, str]) -> bytes:
    """The first state of a report's document, from the store's text (deterministic bytes)."""
    doc: Doc = Doc(client_id=SEED_CLIENT)
    with doc.transaction():
        if title:
            text(doc, TITLE).insert(0, title)
        for key, body in sections.items():
            if body:
                text(doc, section_name(key)).insert(0, body)
    return doc.get_update()


def read(doc: Doc, keys: list[str]) -> tuple[str, dict[str, str]]:
    """The title and each section's body as the document has them now."""
    return str(text(doc, TITLE)), {key: str(text(doc, section_name(key))) for key in keys}


def without_nul(doc: Doc, keys: list[str]) -> bytes | None:
    """Remove every NUL character from the title and sections (the update that did it, None if none).

    No text of a report holds NUL: the REST API refuses it, and PostgreSQL cannot store it. A Yjs
    update cannot be read for it before it is applied, so a client that types one keeps it only until
    the room's next save, which takes it out of the shared document for every editor."""
    before = doc.get_state()
    with doc.transaction():
        for name in (TITLE, *(section_name(key) for key in keys)):
            target = text(doc, name)
            value = str(target)
            if "\x00" in value:
                apply_diff(target, value, value.replace("\x00", ""))
    change = doc.get_update(before)
    return None if change == b"\x00\x00" else change


def _utf8(value: str, index: int) -> int:
    """pycrdt's Text indexes UTF-8 bytes; Python's str indexes code points."""
    return len(value[:index].encode())


def apply_diff(target: Text, old: str, new: str) -> None:
    """Turn `target` (holding `old`) into `new` by the smallest edits: what others type elsewhere in
    the same text at the same time survives the merge. Call inside a transaction."""
    if old == new:
        return
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old, end_new = end_old - 1, end_new - 1
    middle_old, middle_new = old[start:end_old], new[start:end_new]
    if len(middle_old) + len(middle_new) > DIFF_WINDOW:
        opcodes: list[tuple[str, int, int, int, int]] = [("replace", 0, len(middle_old), 0, len(middle_new))]
    else:
        opcodes = list(SequenceMatcher(None, middle_old, middle_new, autojunk=False).get_opcodes())
    # Right to left, so the offsets of what is still to do stay those of `old`.
    for tag, i1, i2, j1, j2 in reversed(opcodes):
        if tag == "equal":
            continue
        begin, stop = _utf8(old, start + i1), _utf8(old, start + i2)
        if stop > begin:
            del target[begin:stop]
        if j2 > j1:
            target.insert(begin, middle_new[j1:j2])


def rebase(base_state: bytes, title: str, sections: dict[str, str]) -> tuple[bytes, bytes]:
    """A change made outside the document (a REST PATCH, a redraft), as an update of the document.

    `base_state` is the document as it was when it last agreed with the store; the change is the diff
    from that text to the new one, so it merges with whatever was typed since (a CRDT update relative
    to the base, not an overwrite of the live text). Returns (the update, the new base state).
    """
    doc: Doc = load(base_state) if base_state else Doc()
    before = doc.get_state()
    old_title, old_sections = read(doc, list(sections))
    with doc.transaction():
        apply_diff(text(doc, TITLE), old_title, title)
        for key, body in sections.items():
            apply_diff(text(doc, section_name(key)), old_sections[key], body)
    return doc.get_update(before), doc.get_update()
