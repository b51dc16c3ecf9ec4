from __future__ import annotations

from datetime import date

from django.shortcuts import render
from django.views import View

from adminpanel.analytics_report import revenue_report_get


class AnalyticsView(View):
    """GET only: the page reads snapshots and changes nothing."""

    def get(self, request):
        # accounts.middleware.StaffAccessMiddleware admits only staff who passed their second factor.
        raw = request.GET.get("as_of", "")
        day = None
        if raw:
            try:
                day = date.fromisoformat(raw)
            except ValueError:
                context = {"error": f"“{raw[:40]}” is not a date: use YYYY-MM-DD.", "as_of": "", "section": "analytics"}
                return render(request, "adminpanel/analytics.html", context, status=400)
        report = revenue_report_get(day=day, currency=request.GET.get("currency") or None)
        context = {"report": report, "as_of": raw, "charts": _charts(report), "section": "analytics"}
        return render(request, "adminpanel/analytics.html", context)


def _charts(report) -> dict:
    """The JSON the charts draw (static/src/staff-analytics.js): decimal strings, turned into
    numbers only for the chart's positions; the page's tables show the exact figures."""
    labels = [p.month for p in report.trend]
    kinds = ("new", "expansion", "reactivation", "contraction", "churn")
    return {
        "mrr": {"labels": labels, "datasets": [{"label": "MRR", "values": [p.figures["mrr"] for p in report.trend]}]},
        "movements": {
            "labels": labels,
            "stacked": True,
            "datasets": [
                {
                    "label": kind.title(),
                    # contraction and churn drawn below the axis, as ChartMogul's movements chart
                    "values": [
                        ("-" if kind in ("contraction", "churn") else "") + p.figures["movements"][kind]
                        for p in report.trend
                    ],
                }
                for kind in kinds
            ],
        },
        "aging": {
            "labels": ["Not yet due", "0-30", "31-60", "61-90", "90+"],
            "datasets": [
                {"label": "Outstanding", "values": list(report.figures["aging"].values()) if report.figures else []}
            ],
        },
    }
