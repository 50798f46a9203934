"""The pages' own words in English and Chinese, and which language a request gets.

The UI language is the `lang` cookie (set by the switch in the footer), else the browser's
Accept-Language; a report's own text is always shown in the report's language.
"""

from __future__ import annotations

from fastapi import Request

LANGUAGES = ("en", "zh")

WORDS: dict[str, dict[str, str]] = {
    "app": {"en": "Post-mortems", "zh": "事后复盘"},
    "sign_in": {"en": "Sign in", "zh": "登录"},
    "sign_out": {"en": "Sign out", "zh": "退出"},
    "api_token": {"en": "API token", "zh": "API 令牌"},
    "sign_in_help": {
        "en": "Paste your API token (ask an admin for one: postmortem token create).",
        "zh": "粘贴你的 API 令牌（可请管理员运行 postmortem token create 创建）。",
    },
    "unknown_token": {"en": "Unknown or revoked API token.", "zh": "令牌无效或已吊销。"},
    "signed_in_as": {"en": "Signed in as", "zh": "当前用户"},
    "via_link": {"en": "via a personal link", "zh": "通过个人链接"},
    "list": {"en": "All post-mortems", "zh": "全部复盘"},
    "filter": {"en": "Filter", "zh": "筛选"},
    "status": {"en": "Status", "zh": "状态"},
    "team": {"en": "Team", "zh": "团队"},
    "service": {"en": "Service", "zh": "服务"},
    "incident": {"en": "Incident", "zh": "事件"},
    "created_from": {"en": "Created from", "zh": "创建起"},
    "created_to": {"en": "Created before", "zh": "创建止"},
    "sort": {"en": "Sort", "zh": "排序"},
    "newest_created": {"en": "Newest created", "zh": "最新创建"},
    "newest_updated": {"en": "Recently updated", "zh": "最近更新"},
    "any": {"en": "Any", "zh": "全部"},
    "title": {"en": "Title", "zh": "标题"},
    "live_editor": {"en": "Write together (live)", "zh": "实时协作编辑"},
    "severity": {"en": "Severity", "zh": "级别"},
    "created": {"en": "Created", "zh": "创建时间"},
    "updated": {"en": "Updated", "zh": "更新时间"},
    "next_page": {"en": "Next page", "zh": "下一页"},
    "first_page": {"en": "First page", "zh": "第一页"},
    "nothing": {"en": "Nothing here.", "zh": "暂无内容。"},
    "metrics_panel": {"en": "Key metrics", "zh": "关键指标"},
    "ttd": {"en": "Time to detect", "zh": "发现用时"},
    "tta": {"en": "Time to acknowledge", "zh": "响应用时"},
    "ttr": {"en": "Time to resolve", "zh": "恢复用时"},
    "impact": {"en": "Impact", "zh": "影响时长"},
    "services": {"en": "Services", "zh": "服务"},
    "responders": {"en": "Responders", "zh": "响应人"},
    "sections": {"en": "Sections", "zh": "章节"},
    "edit": {"en": "Edit", "zh": "编辑"},
    "save": {"en": "Save", "zh": "保存"},
    "required": {"en": "required", "zh": "必填"},
    "timeline": {"en": "Timeline", "zh": "时间线"},
    "kind": {"en": "Kind", "zh": "类型"},
    "source": {"en": "Source", "zh": "来源"},
    "evidence": {"en": "evidence", "zh": "证据"},
    "meeting": {"en": "Review meeting", "zh": "复盘会议"},
    "download_ics": {"en": "Add to calendar (.ics)", "zh": "加入日历 (.ics)"},
    "reschedule": {"en": "Reschedule", "zh": "改期"},
    "outside_hours": {"en": "even outside the team's working hours", "zh": "即使在团队工作时间之外"},
    "no_meeting": {"en": "No meeting planned yet.", "zh": "尚未安排会议。"},
    "reviewers": {"en": "Reviewers", "zh": "评审人"},
    "history": {"en": "History", "zh": "历史"},
    "action_items": {"en": "Action items", "zh": "改进项"},
    "description": {"en": "Description", "zh": "描述"},
    "owner": {"en": "Owner", "zh": "负责人"},
    "due": {"en": "Due", "zh": "截止"},
    "priority": {"en": "Priority", "zh": "优先级"},
    "ticket": {"en": "Ticket", "zh": "工单"},
    "add": {"en": "Add", "zh": "添加"},
    "comments": {"en": "Comments", "zh": "评论"},
    "comment": {"en": "Comment", "zh": "评论"},
    "reply": {"en": "Reply", "zh": "回复"},
    "resolve": {"en": "Resolve thread", "zh": "解决"},
    "resolved": {"en": "resolved", "zh": "已解决"},
    "problems": {"en": "Problems", "zh": "问题"},
    "retry": {"en": "Retry", "zh": "重试"},
    "follow_ups": {"en": "Follow-up checks", "zh": "跟进检查"},
    "images": {"en": "Images", "zh": "图片"},
    "actions": {"en": "Actions", "zh": "操作"},
    "submit": {"en": "Submit for review", "zh": "提交评审"},
    "approve": {"en": "Approve", "zh": "批准"},
    "request_changes": {"en": "Request changes", "zh": "要求修改"},
    "publish": {"en": "Publish", "zh": "发布"},
    "unpublish": {"en": "Unpublish", "zh": "撤回发布"},
    "archive": {"en": "Archive", "zh": "归档"},
    "reviewers_hint": {"en": "reviewers' emails, comma-separated", "zh": "评审人邮箱，逗号分隔"},
    "refused": {"en": "Refused", "zh": "未执行"},
    "done": {"en": "Done", "zh": "完成"},
    "conflict_title": {"en": "Someone else saved first", "zh": "他人已先保存"},
    "conflict_help": {
        "en": "The report changed since you opened it. Merge the two texts below and save again.",
        "zh": "打开后该报告已被修改。请合并下面两段文字后重新保存。",
    },
    "their_text": {"en": "Saved now (their text)", "zh": "当前已保存（对方）"},
    "your_text": {"en": "Your text (merge here)", "zh": "你的文字（在此合并）"},
    "save_merged": {"en": "Save merged text", "zh": "保存合并结果"},
    "back": {"en": "Back to the report", "zh": "返回报告"},
    "error": {"en": "Something is wrong", "zh": "出错了"},
    "link_expired": {
        "en": "Your link has expired: sign in to open the post-mortem.",
        "zh": "链接已过期，请登录后打开。",
    },
    "language": {"en": "Language", "zh": "语言"},
    "public_summary": {"en": "Public summary", "zh": "公开摘要"},
    "markdown": {"en": "Markdown", "zh": "Markdown"},
    "exports": {"en": "Exports", "zh": "导出"},
    "board": {"en": "Action items", "zh": "改进项"},
    "board_title": {"en": "Action items across post-mortems", "zh": "全部复盘的改进项"},
    "insights": {"en": "Metrics", "zh": "指标"},
    "insights_title": {"en": "Post-mortem metrics", "zh": "复盘指标"},
    "overdue": {"en": "overdue", "zh": "已逾期"},
    "only_overdue": {"en": "Only overdue", "zh": "仅逾期"},
    "report": {"en": "Post-mortem", "zh": "复盘"},
    "download_csv": {"en": "Download CSV", "zh": "下载 CSV"},
    "items_found": {"en": "items", "zh": "项"},
    "of_them_overdue": {"en": "overdue", "zh": "项逾期"},
    "page_of": {"en": "Page {n} of {total}", "zh": "第 {n} 页，共 {total} 页"},
    "prev_page": {"en": "Previous page", "zh": "上一页"},
    "from": {"en": "Created from", "zh": "创建起"},
    "to": {"en": "Created to", "zh": "创建止"},
    "created_count": {"en": "Post-mortems", "zh": "复盘数"},
    "completion_rate": {"en": "Completion rate", "zh": "完成率"},
    "to_publish": {"en": "Resolution to publish (mean)", "zh": "恢复到发布（平均）"},
    "items_total": {"en": "Action items", "zh": "改进项"},
    "on_time_rate": {"en": "Items done on time", "zh": "按时完成率"},
    "items_overdue": {"en": "Items overdue", "zh": "逾期改进项"},
    "recurrence_rate": {"en": "Recurrence rate", "zh": "复发率"},
    "ttd_median": {"en": "Time to detect (median)", "zh": "发现用时（中位数）"},
    "ttr_median": {"en": "Time to resolve (median)", "zh": "恢复用时（中位数）"},
    "month": {"en": "Month", "zh": "月份"},
    "min_unit": {"en": " min", "zh": " 分钟"},
    "figures": {"en": "The figures", "zh": "数据"},
    "count": {"en": "Count", "zh": "数量"},
    "chart_times": {"en": "Time to detect and to resolve, by month", "zh": "每月发现与恢复用时"},
    "chart_times_desc": {
        "en": "Median minutes from the incident's start to its detection and to its resolution, for the incidents that started each month.",
        "zh": "每月开始的事件中，到发现、到恢复的用时中位数（分钟）。",
    },
    "chart_rates": {"en": "Completion, on-time and recurrence rates, by month", "zh": "每月完成率、按时率与复发率"},
    "chart_rates_desc": {
        "en": "Per month of the incidents' start: the share of post-mortems published, of completed action items done by their due date, and of follow-up checks that found the incident recurred.",
        "zh": "按事件开始月份：已发布复盘的比例、按期完成的改进项比例、跟进检查发现复发的比例。",
    },
    "chart_causes": {"en": "Cause categories", "zh": "原因类别"},
    "chart_causes_desc": {"en": "How many post-mortems name each cause category.", "zh": "各原因类别的复盘数量。"},
    "chart_services": {"en": "Most affected services", "zh": "受影响最多的服务"},
    "chart_services_desc": {
        "en": "The ten services named by the most post-mortems.",
        "zh": "被最多复盘涉及的十个服务。",
    },
    "chart_teams": {"en": "Completion rate by team", "zh": "各团队完成率"},
    "chart_teams_desc": {"en": "The share of each team's post-mortems published.", "zh": "各团队已发布复盘的比例。"},
    "no_data": {"en": "No post-mortems match.", "zh": "没有符合条件的复盘。"},
}


def ui_language(request: Request) -> str:
    """The `lang` cookie, else the first of our languages in Accept-Language, else English."""
    chosen = request.cookies.get("lang")
    if chosen in LANGUAGES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


def translator(language: str) -> dict[str, str]:
    return {key: words.get(language, words["en"]) for key, words in WORDS.items()}
