"""How times and durations read in a report, in each language."""

from __future__ import annotations

from datetime import datetime

from postmortem.models import Language
from postmortem.timezones import as_utc, in_zone

_UNITS = {
    Language.EN: ("d", "h", "min", "s"),
    Language.ZH: ("天", "小时", "分钟", "秒"),
}


def format_duration(seconds: int | float | None, language: Language = Language.EN) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    names = _UNITS[language]
    parts = [f"{value} {name}" for value, name in zip((days, hours, minutes), names[:3], strict=True) if value]
    if not parts or (secs and not days and not hours):
        parts.append(f"{secs} {names[3]}")
    return " ".join(parts)


def format_local(value: datetime | None, zone: str) -> str:
    """`2021-06-04 15:16 CEST (13:16 UTC)`: the team's zone first, UTC alongside."""
    if value is None:
        return ""
    utc = as_utc(value)
    if zone == "UTC":
        return utc.strftime("%Y-%m-%d %H:%M UTC")
    local = in_zone(utc, zone)
    utc_part = utc.strftime("%H:%M UTC") if local.date() == utc.date() else utc.strftime("%Y-%m-%d %H:%M UTC")
    return f"{local.strftime('%Y-%m-%d %H:%M %Z')} ({utc_part})"


# PagerDuty's urgencies (`high`, `low`) as a report in each language prints them; others are kept.
URGENCY_LABELS = {Language.EN: {}, Language.ZH: {"high": "高", "low": "低"}}


def urgency_label(urgency: str, language: Language) -> str:
    return URGENCY_LABELS[language].get(urgency.lower(), urgency)


KIND_LABELS = {
    Language.EN: {
        "impact_start": "Impact started",
        "alert_fired": "Alert fired",
        "triggered": "Triggered",
        "notified": "Notified",
        "acknowledged": "Acknowledged",
        "escalated": "Escalated",
        "reassigned": "Reassigned",
        "note": "Note",
        "mitigated": "Mitigated",
        "resolved": "Resolved",
        "alert_resolved": "Alert resolved",
        "message": "Message",
    },
    Language.ZH: {
        "impact_start": "影响开始",
        "alert_fired": "告警触发",
        "triggered": "事故触发",
        "notified": "已通知",
        "acknowledged": "已确认",
        "escalated": "已升级",
        "reassigned": "已转派",
        "note": "备注",
        "mitigated": "已缓解",
        "resolved": "已解决",
        "alert_resolved": "告警恢复",
        "message": "消息",
    },
}
