"""What our notifications say, in English and Chinese (one voice: a report's messages speak its language).

The workflow chooses what to say as words of this table and their values (`Say`); the activity that
sends it reads the stored report and writes it in the report's language, with any time in the report's
zone (UTC beside it, as the pages show times). So a report switched to Chinese, or to another zone,
after its run began is told in its new voice, and nothing the workflow records depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

from postmortem.models import Language, Postmortem
from postmortem.report.formatting import format_local


class NoticeKind(StrEnum):
    """Why a person is told: names the subject, the report's title completes it (in the activity)."""

    REVIEW_REQUESTED = "review_requested"
    CHANGES_REQUESTED = "changes_requested"
    MENTION = "mention"
    PUBLISHED = "published"
    LAPSED = "lapsed"
    REMINDER = "reminder"


class Say(BaseModel):
    """One sentence of a notification: a key of `WORDS` and the values it is filled with."""

    words: str
    args: dict[str, str | list[str]] = Field(
        default_factory=dict, description="values by name; a list is joined the language's way"
    )
    at: AwareDatetime | None = Field(default=None, description="written as {at}, in the report's zone")
    section: str | None = Field(default=None, description="a section key, written as {section}: its title")


SUBJECTS: dict[Language, dict[NoticeKind, str]] = {
    Language.EN: {
        NoticeKind.REVIEW_REQUESTED: "Review requested",
        NoticeKind.CHANGES_REQUESTED: "Changes requested",
        NoticeKind.MENTION: "You were mentioned",
        NoticeKind.PUBLISHED: "Approved and published",
        NoticeKind.LAPSED: "Review again",
        NoticeKind.REMINDER: "Reminder",
    },
    Language.ZH: {
        NoticeKind.REVIEW_REQUESTED: "请评审",
        NoticeKind.CHANGES_REQUESTED: "需要修改",
        NoticeKind.MENTION: "有人提到了你",
        NoticeKind.PUBLISHED: "已批准并发布",
        NoticeKind.LAPSED: "请重新评审",
        NoticeKind.REMINDER: "提醒",
    },
}

WORDS: dict[Language, dict[str, str]] = {
    Language.EN: {
        # What the workflow says (the English is what its messages said before this table).
        "asked": "You were asked to review a post-mortem.",
        "submitted": "{by} asked you to review the post-mortem.",
        "changes_requested": "{by} requested changes",
        "changes_requested_because": "{by} requested changes: {comment}",
        "lapsed": "The post-mortem changed since your approval: review it again.",
        "edited_after_approval": (
            "{by} changed the post-mortem after your approval (version {version}). Please review it again."
        ),
        "published": "The post-mortem was approved and published.",
        "mentioned": "{by} mentioned you in a comment: {excerpt}",
        "mentioned_on": "{by} mentioned you in a comment on {section}: {excerpt}",
        "remind_submit": "The post-mortem draft has not been submitted for review yet.",
        "remind_review": "A post-mortem is waiting for your review.",
        "remind_deadline": "The post-mortem is not published {days} days after resolution.",
        "remind_meeting": "The post-mortem review meeting is at {at}.",
        "topic_submit": "submit the draft",
        "topic_review": "your review",
        "topic_deadline": "publication deadline",
        "topic_meeting": "meeting",
        "follow_up_subject": "Day {day} follow-up of post-mortem {title}",
        "follow_up_late": "Action items overdue or stalled: {items}",
        # The activities' own words.
        "open": "Open the post-mortem: {link}",
        "announced": "Post-mortem published: *{title}* ({severity}) — {link}",
        "no_severity": "no severity",
        "problem_subject": "Post-mortem '{title}': {step} ({target}) failed",
        "problem_text": (
            "{message}\n\nThe post-mortem goes on without it. Once the cause is fixed, retry it:\nPOST {retry}\n\n"
        ),
    },
    Language.ZH: {
        "asked": "有人邀请你评审一份复盘。",
        "submitted": "{by} 请你评审这份复盘。",
        "changes_requested": "{by} 要求修改。",
        "changes_requested_because": "{by} 要求修改：{comment}",
        "lapsed": "你批准之后复盘有了改动，请重新评审。",
        "edited_after_approval": "{by} 在你批准之后修改了复盘（版本 {version}），请重新评审。",
        "published": "复盘已批准并发布。",
        "mentioned": "{by} 在评论中提到了你：{excerpt}",
        "mentioned_on": "{by} 在“{section}”的评论中提到了你：{excerpt}",
        "remind_submit": "复盘草稿尚未提交评审。",
        "remind_review": "有一份复盘在等待你的评审。",
        "remind_deadline": "事件解决已 {days} 天，复盘仍未发布。",
        "remind_meeting": "复盘会议时间：{at}。",
        "topic_submit": "提交草稿",
        "topic_review": "你的评审",
        "topic_deadline": "发布期限",
        "topic_meeting": "会议",
        "follow_up_subject": "复盘“{title}”第 {day} 天跟进",
        "follow_up_late": "逾期或停滞的改进项：{items}",
        "open": "打开复盘：{link}",
        "announced": "复盘已发布：*{title}*（{severity}）— {link}",
        "no_severity": "未定级",
        "problem_subject": "复盘“{title}”：{step}（{target}）失败",
        "problem_text": "{message}\n\n复盘照常进行，不受影响。原因修复后，可重试此步骤：\nPOST {retry}\n\n",
    },
}

# A problem's step (workflows/side_effects.py) as a Chinese subject names it; English keeps the step's own name.
STEP_WORDS = {
    "publish": "发布",
    "tickets": "创建工单",
    "ticket": "同步工单",
    "invite": "会议邀请",
    "meeting": "安排会议",
    "notify": "通知",
    "gather": "收集证据",
    "refresh": "刷新事件",
    "narrative": "生成叙述",
    "follow_up": "跟进检查",
}

_ITEMS = {Language.EN: "; ", Language.ZH: "；"}  # how a list value is joined


@dataclass(frozen=True)
class Voice:
    """The language and zone a report's messages are written in, and its section titles (a mention
    names the section as the report calls it)."""

    language: Language = Language.EN
    zone: str = "UTC"
    sections: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, pm: Postmortem) -> Voice:
        return cls(pm.language, pm.timezone, {section.key: section.title for section in pm.sections})

    def words(self, key: str, **values: str) -> str:
        return WORDS[self.language][key].format(**values)

    def say(self, line: Say, **known: str) -> str:
        """`line` written out; `known` are values the activity has (the report's title)."""
        joined = _ITEMS[self.language].join
        values = {**known, **{name: v if isinstance(v, str) else joined(v) for name, v in line.args.items()}}
        if line.at is not None:
            values["at"] = format_local(line.at, self.zone)
        if line.section is not None:
            values["section"] = self.sections.get(line.section, line.section)
        return self.words(line.words, **values)

    def subject(self, kind: NoticeKind, title: str, topics: Sequence[str] = ()) -> str:
        """`Reminder: <title> (submit the draft, meeting)`, `提醒：<title>（提交草稿、会议）`."""
        what = SUBJECTS[self.language][kind]
        if self.language == Language.ZH:
            return f"{what}：{title}" + (f"（{'、'.join(topics)}）" if topics else "")
        return f"{what}: {title}" + (f" ({', '.join(topics)})" if topics else "")

    def topics(self, keys: Sequence[str]) -> list[str]:
        return [self.words(key) for key in keys]

    def step(self, step: str) -> str:
        return STEP_WORDS.get(step, step) if self.language == Language.ZH else step


ENGLISH = Voice()
