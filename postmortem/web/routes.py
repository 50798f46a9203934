"""The pages under `/`: sign-in, the list, a report, its forms, the public summary, the API docs.

Server-rendered (Jinja2), readable without JavaScript. A page reads the store as the JSON API does,
and every form calls the very function the JSON API's route runs (api/review.py, api/postmortems.py,
…) with the caller the page resolved, so a page can neither see nor do more than the API would let
the same person. A refusal (the workflow's UpdateRejected, an HTTPException of the API's code) is
shown in its own words with its status; a stale edit (412) shows both texts to merge.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from postmortem.api import action_items as action_items_api
from postmortem.api import images as images_api
from postmortem.api import meeting as meeting_api
from postmortem.api import postmortems as postmortems_api
from postmortem.api import problems as problems_api
from postmortem.api import review as review_api
from postmortem.api.errors import error
from postmortem.api.etags import etag
from postmortem.api.services import Services, get_services
from postmortem.app.gateway import TemporalRefused, TemporalUnavailable, UpdateRejected, WorkflowGone
from postmortem.evidence.models import EntryKind, EvidenceSource
from postmortem.models import (
    ActionItemStatus,
    CauseCategory,
    Language,
    Postmortem,
    Priority,
    Source,
    Status,
    Visibility,
)
from postmortem.report import images as image_rules
from postmortem.report.exports import markdown_parser, sanitise_html
from postmortem.report.formatting import format_local
from postmortem.review.lifecycle import Actor, allowed_actions, can_edit
from postmortem.review.visibility import may_see
from postmortem.store.errors import NotFound, VersionConflict
from postmortem.store.listing import InvalidCursor, PostmortemFilter
from postmortem.store.tokens import Role
from postmortem.web import session as web_session
from postmortem.web.i18n import LANGUAGES, translator, ui_language, words
from postmortem.web.session import Caller, PageError, caller, check_csrf, csrf_token, ensure_csrf

router = APIRouter(include_in_schema=False)
public = APIRouter(tags=["public"])

_HERE = Path(__file__).parent
STATIC = StaticFiles(directory=_HERE / "static")
# The live editor's bundle (web-src/editor.js, built by scripts/bootstrap.sh; never committed): without
# it the report page keeps its plain forms.
EDITOR_BUNDLE = _HERE / "static" / "editor" / "editor.js"
DOCS_STATIC = StaticFiles(directory=str(resources.files("fastapi_offline") / "static"))

# Pages: only our own files (no inline script or style, no CDN); images of reports over https or
# from us; forms post back here only; never framed; the signed link in the URL is never sent on as
# a Referer to the evidence links a report holds.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' https:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI and ReDoc set inline styles (and ReDoc runs a blob: worker); still no script but ours.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

_markdown = markdown_parser()
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_markdown_html(text: str) -> str:
    """A report's Markdown as the HTML export renders it: no raw HTML, sanitised by nh3."""
    return sanitise_html(_markdown.render(text or ""))


def _duration(seconds: float | None, t: dict[str, str] | None = None) -> str:
    """`1 h 05 min`, or in the page's words (`1 小时 05 分钟`) given its translator."""
    if seconds is None:
        return "—"
    hours, rest = divmod(int(seconds), 3600)
    minutes = rest // 60
    h_unit, min_unit = (t["h_unit"], t["min_unit"]) if t else (" h", " min")
    return f"{hours}{h_unit} {minutes:02d}{min_unit}" if hours else f"{minutes}{min_unit}"


def _when(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


templates.filters["markdown"] = render_markdown_html
templates.filters["duration"] = _duration
templates.filters["when"] = _when
templates.filters["local"] = format_local  # `2026-12-02 11:00 CET (10:00 UTC)`: the zone's time first


def page(
    request: Request,
    services: Services,
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    lang: str | None = None,
    who: Caller | None = None,
    csp: str = PAGE_CSP,
) -> HTMLResponse:
    language = lang or ui_language(request)
    html = templates.get_template(name).render(
        t=translator(language),
        ui=language,
        languages=LANGUAGES,
        csrf=csrf_token(request),
        who=who,
        path=request.url.path,
        nav=NAV,
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": csp, **SECURITY_HEADERS})
    ensure_csrf(request, response, services)
    return response


# Entries of the top navigation: (path, word); the board and the metrics are in program_pages.py.
NAV: list[tuple[str, str]] = [("/postmortems", "list"), ("/action-items", "board"), ("/insights", "insights")]


def page_words(error: PageError, language: str) -> str:
    """The refusal in the page's language: our own words by their key, the API's and workflow's as they are."""
    return words(error.message, language, error.fill)


def signin_form(
    request: Request,
    services: Services,
    next: str,
    *,
    notice: str | None = None,
    refused: str | None = None,
    failed: bool = False,
    status: int = 200,
) -> HTMLResponse:
    """The sign-in page: the provider's button when single sign-on is configured, and the token form;
    `notice` says why to sign in, `refused` why a single sign-on did not happen, `failed` a bad token."""
    oidc = services.settings.oidc
    sso = oidc.provider_name if oidc.enabled else None
    context = {"next": next, "notice": notice, "refused": refused, "failed": failed, "sso": sso}
    return page(request, services, "signin.html", context, status=status)


def error_page(request: Request, services: Services, error: PageError) -> HTMLResponse:
    message = page_words(error, ui_language(request))
    if error.sign_in:
        refused, notice = (message, None) if error.failed else (None, message)
        target = error.next or _local(request.url.path)
        return signin_form(request, services, target, notice=notice, refused=refused, status=error.status)
    return page(request, services, "error.html", {"status": error.status, "message": message}, status=error.status)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (every form here): the last value of each field; then the CSRF check."""
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}
    check_csrf(request, fields.get("csrf"))
    # Bad UTF-8 is already U+FFFD above; a NUL (%00) would be stored as is, as the JSON API refuses it.
    for key, value in fields.items():
        if "\x00" in key or "\x00" in value:
            raise PageError(422, "err_form_nul", args={"field": key.replace("\x00", "\\0")})
    return fields


def _local(path: str | None) -> str:
    """Only a path on this site is a place to go back to after signing in (no open redirect)."""
    if not path or not path.startswith("/") or "\\" in path or any(ord(c) < 33 or c == "\x7f" for c in path):
        return "/postmortems"
    if path.startswith("//"):  # "//host/…" is another site
        return "/postmortems"
    return path


async def _signed_in(request: Request, services: Services) -> Caller:
    who = await caller(request, services)
    if who is None:
        raise PageError(401, "err_sign_in_list", sign_in=True)
    return who


async def _report(services: Services, postmortem_id: str, who: Caller) -> Postmortem:
    """The report if this caller may see it; as the API, a hidden one is as if it did not exist."""
    try:
        pm = await services.store.postmortems.get(postmortem_id)
    except NotFound as exc:
        raise PageError(404, "err_no_report", args={"id": postmortem_id}) from exc
    if may_see(who.reader, pm) or may_see(who.reader, pm, await services.store.review.get(pm.id)):
        return pm
    raise PageError(404, "err_no_report", args={"id": postmortem_id})


def _need(who: Caller, role: Role) -> None:
    """The role an API route's dependency asks for, in the API's words."""
    if who.token.role.rank < role.rank:
        raise PageError(403, "err_role", args={"role": role.value, "name": who.token.name, "has": who.token.role.value})


def report_url(postmortem_id: str, who: Caller | None, **query: str) -> str:
    params = {**({"t": who.link} if who is not None and who.link else {}), **query}
    base = f"/postmortems/{quote(postmortem_id, safe='')}"
    return f"{base}?{urlencode(params)}" if params else base


# Sign-in -------------------------------------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next: str | None = None) -> HTMLResponse:
    services = await get_services(request)
    return signin_form(request, services, _local(next))


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    services = await get_services(request)
    try:
        fields = await _form(request)
    except PageError as refused:
        return error_page(request, services, refused)
    token = fields.get("token", "").strip()
    info = await services.store.tokens.authenticate(token) if token else None
    target = _local(fields.get("next"))
    if info is None:
        return signin_form(request, services, target, failed=True, status=401)
    response = RedirectResponse(target, status_code=303)
    web_session.set_cookie(response, request, services, web_session.SESSION_COOKIE, token, max_age=30 * 86400)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    services = await get_services(request)
    try:
        await _form(request)
    except PageError as refused:
        return error_page(request, services, refused)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(web_session.SESSION_COOKIE, path="/")
    return response


@router.post("/language")
async def choose_language(request: Request) -> Response:
    services = await get_services(request)
    try:
        fields = await _form(request)
    except PageError as refused:
        return error_page(request, services, refused)
    response = RedirectResponse(_local(fields.get("next")), status_code=303)
    if fields.get("lang") in LANGUAGES:
        web_session.set_cookie(
            response, request, services, web_session.LANG_COOKIE, fields["lang"], max_age=365 * 86400
        )
    return response


# The list ------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
@router.get("/postmortems", response_class=HTMLResponse)
async def list_page(request: Request) -> Response:
    services = await get_services(request)
    try:
        who = await _signed_in(request, services)
        query = request.query_params
        status = query.get("status") or None
        created_from, created_to = _datetime(query.get("created_from")), _datetime(query.get("created_to"))
        sort = "updated" if query.get("sort") == "updated" else "created"
        try:
            limit = min(max(int(query.get("limit") or 25), 1), 200)
        except ValueError:
            limit = 25
        try:
            items, next_cursor = await services.store.postmortems.list(
                PostmortemFilter(
                    viewer=who.reader,
                    status=Status(status) if status in {s.value for s in Status} else None,
                    team=query.get("team") or None,
                    service=query.get("service") or None,
                    incident_id=query.get("incident_id") or None,
                    created_from=created_from,
                    created_to=created_to,
                ),
                sort=sort,
                limit=limit,
                cursor=query.get("cursor") or None,
            )
        except InvalidCursor as exc:
            raise PageError(400, "err_cursor", args={"reason": str(exc)}) from exc
    except PageError as refused:
        return error_page(request, services, refused)
    kept = {k: v for k, v in query.items() if k != "cursor" and v}
    next_url = "/postmortems?" + urlencode({**kept, "cursor": next_cursor}) if next_cursor else None
    return page(
        request,
        services,
        "list.html",
        {
            "items": items,
            "statuses": [s.value for s in Status],
            "query": dict(query),
            "next_url": next_url,
            "first_url": "/postmortems?" + urlencode(kept) if query.get("cursor") else None,
        },
        who=who,
    )


def _datetime(value: str | None, zone: tzinfo = UTC) -> datetime | None:
    """A date or datetime from a form field; a naive one is read in `zone` (date inputs have none)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PageError(422, "err_date", args={"value": repr(value)}) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


# The report ----------------------------------------------------------------------------------


async def _report_context(services: Services, pm: Postmortem, who: Caller, request: Request) -> dict[str, Any]:
    store = services.store
    query = request.query_params
    kinds = [EntryKind(k) for k in query.getlist("kind") if k in {e.value for e in EntryKind}]
    sources = [EvidenceSource(s) for s in query.getlist("source") if s in {e.value for e in EvidenceSource}]
    review = await store.review.get(pm.id)
    comments = await store.review.comments(pm.id)
    threads: dict[str, list[Any]] = {}
    for comment in comments:
        if comment.parent_id is None:
            threads.setdefault(comment.section, []).append(
                {"root": comment, "replies": [c for c in comments if c.parent_id == comment.id]}
            )
    actor = Actor(name=who.token.name, role=who.token.role.value)
    is_reviewer = review.reviewer(who.token.name) is not None
    editor = who.token.role.rank >= Role.EDITOR.rank
    return {
        "pm": pm,
        "review": review,
        "meeting": await store.meetings.get(pm.id),
        "problems": await store.problems.list(pm.id),
        "follow_ups": [postmortems_api.follow_up_view(check) for check in await store.follow_ups.list(pm.id)],
        "threads": threads,
        "images": await store.images.list(pm.id),
        "timeline": await store.evidence.entries(pm.id, kinds=kinds or None, sources=sources or None, limit=500),
        "timeline_total": await store.evidence.count(pm.id, kinds=kinds or None, sources=sources or None),
        "kinds": [e.value for e in EntryKind],
        "sources": [e.value for e in EvidenceSource],
        "chosen_kinds": [k.value for k in kinds],
        "chosen_sources": [s.value for s in sources],
        "buttons": allowed_actions(review, actor),
        "priorities": [p.value for p in Priority],
        "item_statuses": [s.value for s in ActionItemStatus],
        "item_versions": {
            item.id: (await store.postmortems.get_action_item(pm.id, item.id))[1] for item in pm.action_items
        },
        "can_edit": can_edit(pm.status, who.token.role.value, is_reviewer=is_reviewer),
        "editor": editor,
        "visibilities": [v.value for v in Visibility],
        "causes": [c.value for c in CauseCategory],
        "incident_sources": [s.value for s in Source],
        "image_limits": {"mb": image_rules.MAX_BYTES // (1024 * 1024), "count": image_rules.MAX_IMAGES},
        "image_types": "image/jpeg,image/png,image/webp,image/gif",
        "link": who.link,
        "self_url": report_url(pm.id, who),
        "notice": query.get("done"),
        "refusal": None,
        "coedit": False,  # the report page itself turns the live editor on (with its policy's nonce)
        "nonce": "",
    }


def _report_language(pm: Postmortem) -> str:
    return "zh" if pm.language == Language.ZH else "en"


@router.get("/postmortems/{postmortem_id}", response_class=HTMLResponse)
async def report_page(request: Request, postmortem_id: str, t: str | None = None) -> Response:
    services = await get_services(request)
    try:
        who = await caller(request, services, postmortem_id, t)
        if who is None:
            raise PageError(401, "err_sign_in_report", sign_in=True)
        pm = await _report(services, postmortem_id, who)
        context = await _report_context(services, pm, who, request)
    except PageError as refused:
        return error_page(request, services, refused)
    nonce = secrets.token_urlsafe(16)
    context.update(coedit=EDITOR_BUNDLE.exists(), nonce=nonce)
    response = page(
        request, services, "report.html", context, lang=_report_language(pm), who=who, csp=editor_csp(request, nonce)
    )
    response.headers["ETag"] = etag(pm.version)
    return response


_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def editor_csp(request: Request, nonce: str) -> str:
    """The report page's policy: the live editor's socket on this host, CodeMirror's style sheet by
    nonce, and the style attributes of other people's cursor colours; still no script but ours."""
    host = request.headers.get("host", "")
    sockets = f" ws://{host} wss://{host}" if _HOST.match(host) else ""
    return (
        PAGE_CSP.replace("style-src 'self'", f"style-src 'self' 'nonce-{nonce}'; style-src-attr 'unsafe-inline'")
        + f"; connect-src 'self'{sockets}"
    )


@router.post("/postmortems/{postmortem_id}/images/paste")
async def paste_image(request: Request, postmortem_id: str, t: str | None = None) -> Response:
    """The live editor's pasted or dropped image (the upload form has its own route, answering a page), through the images API's own route (its limits, its
    words, as JSON: a script asks); refused like every page route (a page). The CSRF token comes in
    `X-CSRF-Token`: the body is the image."""
    services = await get_services(request)
    try:
        who = await caller(request, services, postmortem_id, t)
        if who is None:
            raise PageError(401, "sign in to add images to this post-mortem")
        pm = await _report(services, postmortem_id, who)
        check_csrf(request, request.headers.get("x-csrf-token"))
        _need(who, Role.EDITOR)
        answer = Response()
        image = await images_api.upload_image(pm, request, answer, services.store)
    except PageError as refused:
        return error_page(request, services, refused)
    except HTTPException as refused:
        return JSONResponse({"detail": refused.detail}, status_code=refused.status_code)
    return JSONResponse(image.model_dump(mode="json"), status_code=answer.status_code)  # 201 new, 200 known


async def _act(
    request: Request,
    postmortem_id: str,
    run: Callable[[Services, Postmortem, Caller, dict[str, str]], Awaitable[Response | str | None]],
) -> Response:
    """A form post on a report: CSRF, caller, report; run; then back to the page (303), or the page
    again with the refusal in its own words and status."""
    services = await get_services(request)
    try:
        fields = await _form(request)
        who = await caller(request, services, postmortem_id, fields.get("t") or request.query_params.get("t"))
        if who is None:
            raise PageError(401, "err_sign_in_act", sign_in=True)
        pm = await _report(services, postmortem_id, who)
    except PageError as refused:
        return error_page(request, services, refused)
    return await _run(request, services, pm, who, fields, run)


async def _run(
    request: Request,
    services: Services,
    pm: Postmortem,
    who: Caller,
    fields: dict[str, str],
    run: Callable[[Services, Postmortem, Caller, dict[str, str]], Awaitable[Response | str | None]],
) -> Response:
    try:
        outcome = await run(services, pm, who, fields)
    except PageError as refused:
        message, status = page_words(refused, _report_language(pm)), refused.status
    except UpdateRejected as rejected:
        message, status = str(rejected), rejected.status
    except HTTPException as refused:
        message, status = str(refused.detail), refused.status_code
    except ValidationError as invalid:
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in invalid.errors())
        status = 422
    except WorkflowGone:
        message, status = "this post-mortem's workflow has finished: nothing can change it now", 409
    except TemporalUnavailable as exc:
        message, status = f"the workflow service is unreachable, try again shortly ({exc})", 503
    except TemporalRefused as exc:
        message, status = str(exc), 422
    except NotFound as exc:
        message, status = str(exc).strip("'\""), 404
    else:
        if isinstance(outcome, Response):
            return outcome
        return RedirectResponse(report_url(pm.id, who, done=outcome or "saved"), status_code=303)
    pm = await services.store.postmortems.get(pm.id)
    context = await _report_context(services, pm, who, request)
    context["refusal"] = message
    return page(request, services, "report.html", context, status=status, lang=_report_language(pm), who=who)


def _names(text: str) -> list[str]:
    """Reviewers typed in one field, separated by commas or semicolons."""
    return [n.strip() for n in text.replace(";", ",").split(",") if n.strip()]


TRANSITION_ROLES = {"submit": Role.EDITOR, "publish": Role.EDITOR}


@router.post("/postmortems/{postmortem_id}/actions/{action}")
async def transition(request: Request, postmortem_id: str, action: str) -> Response:
    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        store, gateway, token = services.store, services.temporal, who.token
        _need(who, TRANSITION_ROLES.get(action, Role.VIEWER))
        if action == "submit":
            body = review_api.SubmitBody(reviewers=_names(fields.get("reviewers", "")))
            await review_api.submit(pm, body, services, gateway, token)
        elif action == "approve":
            decision = review_api.DecisionBody(comment=fields.get("comment") or None)
            await review_api.approve(pm, decision, store, gateway, token)
        elif action == "request_changes":
            changes = review_api.ChangesBody(comment=fields.get("comment", ""))
            await review_api.request_changes(pm, changes, store, gateway, token)
        elif action in ("publish", "unpublish", "archive"):
            await getattr(review_api, action)(pm, store, gateway, token)
        else:
            raise PageError(404, "err_no_action", args={"action": repr(action)})
        return action

    return await _act(request, postmortem_id, run)


@router.post("/postmortems/{postmortem_id}/edit")
async def edit(request: Request, postmortem_id: str) -> Response:
    """Title or one section, with the version the form was read at (the API's If-Match); a 412
    shows what is stored now beside what was sent, to merge."""

    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> Response | str:
        key = fields.get("section") or None
        if key:
            patch = postmortems_api.PostmortemPatch(
                sections={key: postmortems_api.SectionEdit(body=fields.get("body", ""))}
            )
        else:
            patch = postmortems_api.PostmortemPatch(title=fields.get("title", ""))
        version = fields.get("version", "")
        try:
            await postmortems_api.patch_postmortem(
                pm,
                patch,
                Response(),
                services.store,
                services.temporal,
                who.token,
                etag(int(version)) if version.isdigit() else None,
            )
        except VersionConflict:
            current = await services.store.postmortems.get(pm.id)
            if key:
                theirs = next((s.body for s in current.sections if s.key == key), "")
                label = next((s.title for s in current.sections if s.key == key), key)
            else:
                theirs, label = current.title, None
            return page(
                request,
                services,
                "conflict.html",
                {
                    "pm": current,
                    "section": key,
                    "label": label,
                    "theirs": theirs,
                    "yours": fields.get("body" if key else "title", ""),
                    "link": who.link,
                    "back": report_url(pm.id, who),
                },
                status=412,
                lang=_report_language(current),
                who=who,
            )
        return "saved"

    return await _act(request, postmortem_id, run)


@router.post("/postmortems/{postmortem_id}/comments")
async def comment(request: Request, postmortem_id: str) -> Response:
    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        body = review_api.CommentBody(
            section=fields.get("section", ""), body=fields.get("body", ""), parent_id=fields.get("parent_id") or None
        )
        await review_api.add_comment(pm, body, services.store, who.token, services, services.temporal)
        return "commented"

    return await _act(request, postmortem_id, run)


@router.post("/postmortems/{postmortem_id}/comments/{comment_id}/resolve")
async def resolve(request: Request, postmortem_id: str, comment_id: str) -> Response:
    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        await review_api.resolve_comment(pm, comment_id, services.store, who.token)
        return "resolved"

    return await _act(request, postmortem_id, run)


def _item_fields(fields: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in ("description", "owner", "due_date", "priority", "status"):
        if fields.get(key, "").strip():
            values[key] = fields[key].strip()
    return values


@router.post("/postmortems/{postmortem_id}/action-items")
async def add_item(request: Request, postmortem_id: str) -> Response:
    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        _need(who, Role.EDITOR)
        body = action_items_api.ActionItemCreate(**_item_fields(fields))
        await action_items_api.create_action_item(pm, body, Response(), services.store, services.temporal)
        return "item_added"

    return await _act(request, postmortem_id, run)


@router.post("/postmortems/{postmortem_id}/action-items/{item_id}")
async def edit_item(request: Request, postmortem_id: str, item_id: str) -> Response:
    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        _need(who, Role.EDITOR)
        body = action_items_api.ActionItemPatch(**_item_fields(fields))
        version = fields.get("version", "")
        try:
            await action_items_api.patch_action_item(
                pm,
                item_id,
                body,
                Response(),
                services.store,
                services.temporal,
                who.token,
                etag(int(version)) if version.isdigit() else None,
            )
        except VersionConflict as exc:
            raise PageError(412, "err_stale_item", args={"version": str(exc.current)}) from exc
        return "item_saved"

    return await _act(request, postmortem_id, run)


@router.post("/postmortems/{postmortem_id}/action-items/{item_id}/delete")
async def delete_item(request: Request, postmortem_id: str, item_id: str) -> Response:
    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        _need(who, Role.EDITOR)
        await action_items_api.delete_action_item(pm, item_id, services.store)
        return "item_deleted"

    return await _act(request, postmortem_id, run)


@router.post("/postmortems/{postmortem_id}/reviewers")
async def change_reviewers(request: Request, postmortem_id: str) -> Response:
    """Who reviews a report IN_REVIEW (the API's change-reviewers decision): those who stay keep theirs."""

    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        _need(who, Role.EDITOR)
        body = review_api.ReviewersBody(reviewers=_names(fields.get("reviewers", "")))
        await review_api.change_reviewers(pm, body, services, services.temporal, who.token)
        return "reviewers_changed"

    return await _act(request, postmortem_id, run)


@router.post("/postmortems/{postmortem_id}/incidents")
async def link_incident(request: Request, postmortem_id: str) -> Response:
    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        _need(who, Role.EDITOR)
        body = review_api.LinkBody.model_validate(
            {"source": fields.get("source", ""), "incident_id": fields.get("incident_id", "").strip()}
        )
        await review_api.link_incident(pm, body, services.store, services.temporal, who.token)
        return "incident_linked"

    return await _act(request, postmortem_id, run)


@router.post("/postmortems/{postmortem_id}/settings")
async def report_settings(request: Request, postmortem_id: str) -> Response:
    """Visibility and cause category: the JSON API's PATCH with the version the form was read at."""

    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        patch = postmortems_api.PostmortemPatch.model_validate(
            {key: fields[key] for key in ("visibility", "cause_category") if fields.get(key)}
        )
        version = fields.get("version", "")
        try:
            await postmortems_api.patch_postmortem(
                pm,
                patch,
                Response(),
                services.store,
                services.temporal,
                who.token,
                etag(int(version)) if version.isdigit() else None,
            )
        except VersionConflict as exc:
            raise PageError(412, "err_stale_settings", args={"version": str(exc.current)}) from exc
        return "settings_saved"

    return await _act(request, postmortem_id, run)


@router.post("/postmortems/{postmortem_id}/images")
async def upload_image(request: Request, postmortem_id: str) -> Response:
    """The upload form posts multipart/form-data, which the JSON API's upload reads from the stream
    itself (bounded memory): the CSRF token and the signed link come in the form's query string."""
    services = await get_services(request)
    try:
        check_csrf(request, request.query_params.get("csrf"))
        who = await caller(request, services, postmortem_id, request.query_params.get("t"))
        if who is None:
            raise PageError(401, "err_sign_in_act", sign_in=True)
        pm = await _report(services, postmortem_id, who)
    except PageError as refused:
        return error_page(request, services, refused)

    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        _need(who, Role.EDITOR)
        answer = Response()
        await images_api.upload_image(pm, request, answer, services.store)
        return "image_added" if answer.status_code == 201 else "image_known"

    return await _run(request, services, pm, who, {}, run)


@router.post("/postmortems/{postmortem_id}/images/{image_id}/delete")
async def delete_image(request: Request, postmortem_id: str, image_id: str) -> Response:
    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        _need(who, Role.EDITOR)
        await images_api.delete_image(pm, image_id, services.store)
        return "image_deleted"

    return await _act(request, postmortem_id, run)


@router.post("/postmortems/{postmortem_id}/meeting")
async def reschedule(request: Request, postmortem_id: str) -> Response:
    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        _need(who, Role.EDITOR)
        meeting = await services.store.meetings.get(pm.id)
        # A datetime-local field has no zone: it is the meeting's own (shown beside the field).
        start = _datetime(fields.get("start"), ZoneInfo(meeting.timezone) if meeting else UTC)
        if start is None:
            raise PageError(422, "err_meeting_start")
        change = meeting_api.MeetingChange(start=start, force=fields.get("force") == "on")
        await meeting_api.reschedule_meeting(pm, change, services.temporal, who.token)
        return "rescheduled"

    return await _act(request, postmortem_id, run)


@router.post("/postmortems/{postmortem_id}/problems/{problem_id}/retry")
async def retry(request: Request, postmortem_id: str, problem_id: str) -> Response:
    async def run(services: Services, pm: Postmortem, who: Caller, fields: dict[str, str]) -> str:
        _need(who, Role.EDITOR)
        await problems_api.retry_problem(pm, problem_id, services.store, services.temporal, who.token)
        return "retrying"

    return await _act(request, postmortem_id, run)


@router.get("/postmortems/{postmortem_id}/meeting.ics")
async def meeting_ics(request: Request, postmortem_id: str, t: str | None = None) -> Response:
    services = await get_services(request)
    try:
        who = await caller(request, services, postmortem_id, t)
        if who is None:
            raise PageError(401, "err_sign_in_ics", sign_in=True)
        pm = await _report(services, postmortem_id, who)
        try:
            return await meeting_api.download_invite(pm.id, pm, services)
        except HTTPException as exc:
            raise PageError(exc.status_code, str(exc.detail)) from exc
    except PageError as refused:
        return error_page(request, services, refused)


@router.get("/postmortems/{postmortem_id}/images/{image_id}")
async def image(request: Request, postmortem_id: str, image_id: str, t: str | None = None) -> Response:
    services = await get_services(request)
    try:
        who = await caller(request, services, postmortem_id, t)
        if who is None:
            raise PageError(401, "err_sign_in_image", sign_in=True)
        pm = await _report(services, postmortem_id, who)
        found = await services.store.images.get(pm.id, image_id)
        if found is None:
            raise PageError(404, "err_no_image", args={"image": repr(image_id), "id": repr(pm.id)})
    except PageError as refused:
        return error_page(request, services, refused)
    stored, data = found
    return Response(
        data, media_type=stored.media_type, headers={"Cache-Control": "private, max-age=3600", **SECURITY_HEADERS}
    )


# The public summary --------------------------------------------------------------------------


@public.get(
    "/public/postmortems/{slug}",
    response_class=Response,
    responses={
        200: {"content": {"text/html": {}, "text/markdown": {}}, "description": "the status-page summary"},
        404: error("no published post-mortem at this link"),
    },
)
async def public_summary(request: Request, slug: str, format: str | None = None) -> Response:
    """The status-page summary: HTML for a browser, Markdown for `.md`, `?format=md` or Accept: text/markdown."""
    services = await get_services(request)
    markdown = slug.endswith(".md") or format == "md" or "text/markdown" in request.headers.get("accept", "")
    content = await services.store.review.public_by_slug(slug.removesuffix(".md"))
    if content is None:
        raise HTTPException(404, "no published post-mortem at this link")
    cache = {"Cache-Control": "public, max-age=300", **SECURITY_HEADERS}
    if markdown:
        return Response(content, media_type="text/markdown; charset=utf-8", headers=cache)
    text = content.decode("utf-8") if isinstance(content, bytes) else str(content)
    title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("# ")), "")
    response = page(
        request, services, "public.html", {"title": title, "body": text, "md_url": f"/public/postmortems/{slug}.md"}
    )
    response.headers.update(cache)
    return response


# The API docs, from the fastapi-offline package (no CDN) -------------------------------------


def _docs(request: Request, name: str) -> HTMLResponse:
    html = templates.get_template(name).render(title=request.app.title)
    return HTMLResponse(html, headers={"Content-Security-Policy": DOCS_CSP, **SECURITY_HEADERS})


@router.get("/docs", response_class=HTMLResponse)
async def swagger(request: Request) -> HTMLResponse:
    return _docs(request, "swagger.html")


@router.get("/redoc", response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    return _docs(request, "redoc.html")


def install(app: Any) -> None:
    """Mount the pages, their static files and the docs' assets on `app` (api/app.py)."""
    from postmortem.web import program_pages, sso  # they build on this module's helpers

    app.include_router(router)
    app.include_router(sso.router)
    app.include_router(program_pages.router)
    app.mount("/static/docs", DOCS_STATIC, name="docs-static")
    app.mount("/static", STATIC, name="static")

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        with contextlib.suppress(Exception):
            return error_page(request, await get_services(request), exc)
        return HTMLResponse(exc.message, status_code=exc.status)
