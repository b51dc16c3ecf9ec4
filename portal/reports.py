"""Custom usage reports (issue 13 flow 8): a date range x meters x one group-by property x hour,
day or month buckets, read for one organization the view has already resolved from the
signed-in user's memberships (usage by its external id, as everywhere in the portal).

- **Dates are the organization's.** The range is local dates, first and last day included; a
  bucket is a local hour, day or calendar month, cut at the range's ends. A DST day has 23 or
  25 hourly buckets. In a zone whose offset is not a whole hour the hours start at local
  whole hours (half-past in UTC); metering reads the partial UTC hours from raw events.
- **Figures are metering's.** Each bucket is one `usage_get` over its own [start, end), so every
  aggregation means what it means on the dashboard and the invoice (a distinct count or a
  time-weighted average is the bucket's own, not a sum of smaller buckets).
- **Group-by** is one of the selected meters' group_by properties. A meter split by that
  property alone is shown as metering groups it; a meter split by more properties is folded to
  that one (sum of counts and sums, max of maxima, min of minima); the other aggregations do not
  fold and such a meter cannot be grouped by one of several properties (a form error). A meter
  without the property is reported whole.
- **Fewer statements where it is exact.** A count, sum, max, min or distinct count reported
  whole (not grouped) is one statement over the buckets' own bounds (metering's `bounds`:
  aggregated per bucket in SQL, an hour a bucket boundary cuts read raw): the same figures as
  a statement per bucket. A latest value or time-weighted average reported whole, whose buckets
  are whole UTC hours (every zone with a whole-hour offset), is read as one hourly series per
  31 days and folded into the buckets as portal.selectors._fold does (latest, length-weighted
  mean of time-weighted averages); otherwise, and for a grouped meter, one statement per bucket.
- **Size.** A report costs its statements; up to SYNC_MAX_CELLS are answered in the request,
  more are built by a Celery task with progress (portal.report_exports).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django import forms

from billing.models import Organization
from metering.models import Aggregation, Meter
from metering.selectors.meter import meter_list
from metering.selectors.usage import usage_get
from portal.selectors import _HOURLY_MAX, _PER_BUCKET, _fold, local_days

GRANULARITIES = (("day", "Day"), ("hour", "Hour"), ("month", "Month"))
# The longest range per granularity, in local days: 744 hourly or 366 daily buckets, 36 months.
MAX_DAYS = {"hour": 31, "day": 366, "month": 3 * 366}
# Buckets x meters answered within the request (~1-3 ms a statement on the bench dataset, so a
# page stays well under a second); a larger report is built in the background.
SYNC_MAX_CELLS = 400
CHART_GROUPS = 12  # datasets per chart; the table and the files have every group
_FOLD: dict[str, Callable] = {
    Aggregation.COUNT: sum,
    Aggregation.SUM: sum,
    Aggregation.MAX: max,
    Aggregation.MIN: min,
}
NO_GROUP = "(none)"


@dataclass(frozen=True)
class ReportSpec:
    """What a report is of: JSON primitives only (it travels to the task and is stored)."""

    start: str  # local date, ISO, included
    end: str  # local date, ISO, included
    meters: list[str]  # meter codes
    group_by: str  # a property path, or ""
    granularity: str

    def as_json(self) -> dict:
        return asdict(self)

    @property
    def first_day(self) -> date:
        return date.fromisoformat(self.start)

    @property
    def last_day(self) -> date:
        return date.fromisoformat(self.end)

    @classmethod
    def from_json(cls, data: dict) -> ReportSpec:
        return cls(**data)


def group_by_choices(meters: list[Meter]) -> list[tuple[str, str]]:
    paths = sorted({path for meter in meters for path in meter.group_by})
    return [("", "Nothing"), *((p, p) for p in paths)]


class ReportForm(forms.Form):
    """The report's parameters from a GET query. An unknown meter, a reversed or too long range
    and a group-by a meter cannot fold are field errors on the page, never a server error."""

    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (included)", widget=forms.DateInput(attrs={"type": "date"}))
    meters = forms.MultipleChoiceField(label="Meters", widget=forms.CheckboxSelectMultiple)
    group_by = forms.ChoiceField(label="Group by", required=False)
    granularity = forms.ChoiceField(label="By", choices=GRANULARITIES, initial="day")

    def __init__(self, *args, meters: list[Meter], **kwargs):
        super().__init__(*args, **kwargs)
        self.meter_objects = {m.code: m for m in meters}
        self.fields["meters"].choices = [(m.code, m.name) for m in meters]
        self.fields["group_by"].choices = group_by_choices(meters)

    def clean(self):
        data = super().clean()
        start, end, granularity = data.get("start"), data.get("end"), data.get("granularity")
        if start and end:
            if end < start:
                self.add_error("end", "The last day must not be before the first.")
            elif granularity and (end - start).days + 1 > MAX_DAYS[granularity]:
                self.add_error(
                    "end",
                    f"A report by {granularity} covers at most {MAX_DAYS[granularity]} days: "
                    "shorten the range or choose a coarser granularity.",
                )
        path = data.get("group_by")
        for code in data.get("meters") or []:
            meter = self.meter_objects[code]
            if path and path in meter.group_by and len(meter.group_by) > 1 and meter.aggregation not in _FOLD:
                self.add_error(
                    "group_by",
                    f"{meter.name} ({meter.get_aggregation_display().lower()}) is split by "
                    f"{', '.join(meter.group_by)} and cannot be grouped by {path} alone.",
                )
        return data

    def spec(self) -> ReportSpec:
        data = self.cleaned_data
        return ReportSpec(
            start=data["start"].isoformat(),
            end=data["end"].isoformat(),
            meters=[code for code in self.meter_objects if code in data["meters"]],  # the meters' order
            group_by=data["group_by"] or "",
            granularity=data["granularity"],
        )


def report_form(data, *, meters: list[Meter] | None = None) -> ReportForm:
    return ReportForm(data, meters=list(meter_list()) if meters is None else meters)


# --- buckets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    local_start: datetime  # in the organization's zone
    start: datetime  # UTC
    end: datetime

    def label(self, granularity: str) -> str:
        if granularity == "hour":
            return self.local_start.strftime("%a %-d %b %Y %H:%M")
        if granularity == "day":
            return self.local_start.strftime("%a %-d %b %Y")
        return self.local_start.strftime("%b %Y")


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def report_buckets(*, spec: ReportSpec, zone: ZoneInfo) -> list[Bucket]:
    first, last = date.fromisoformat(spec.start), date.fromisoformat(spec.end)
    start, end = _midnight(first, zone), _midnight(last + timedelta(days=1), zone)
    if spec.granularity == "day":
        return [Bucket(datetime.combine(d, time(), zone), s, e) for d, s, e in local_days(start, end, zone)]
    if spec.granularity == "month":
        out = []
        cursor = first
        while cursor <= last:
            following = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
            s, e = _midnight(cursor, zone), min(_midnight(following, zone), end)
            out.append(Bucket(s.astimezone(zone), s, e))
            cursor = following
        return out
    out = []
    cursor = start
    while cursor < end:  # UTC hours from local midnight: 23 or 25 of them on a DST day
        following = min(cursor + timedelta(hours=1), end)
        out.append(Bucket(cursor.astimezone(zone), cursor, following))
        cursor = following
    return out


def _whole_hours(instant: datetime) -> bool:
    return instant.minute == 0 and instant.second == 0 and instant.microsecond == 0


def _mode(meter: Meter, spec: ReportSpec, buckets: list[Bucket]) -> str:
    """How the meter's buckets are read (see the module doc): "bounds" (one statement over the
    buckets' own bounds), "fold" (one hourly series per 31 days, folded here) or "each" (a
    statement per bucket)."""
    grouped = bool(spec.group_by) and spec.group_by in meter.group_by
    if grouped:
        return "each"
    if meter.aggregation not in _PER_BUCKET:
        return "bounds"
    return "fold" if all(_whole_hours(b.start) and _whole_hours(b.end) for b in buckets) else "each"


def _chunks(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    out = []
    while start < end:  # metering's hourly series cover at most 31 days
        out.append((start, min(start + _HOURLY_MAX, end)))
        start = out[-1][1]
    return out


def _statements(meter: Meter, spec: ReportSpec, buckets: list[Bucket]) -> int:
    if not buckets:
        return 0
    mode = _mode(meter, spec, buckets)
    if mode == "bounds":
        return 1
    return len(_chunks(buckets[0].start, buckets[-1].end)) if mode == "fold" else len(buckets)


def report_cells(*, spec: ReportSpec, zone: ZoneInfo) -> int:
    """The statements the report takes: what decides request or task."""
    buckets = report_buckets(spec=spec, zone=zone)
    return sum(_statements(m, spec, buckets) for m in meter_list() if m.code in spec.meters)


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    bucket: Bucket
    meter: Meter
    group: str | None  # None: the meter is not grouped
    value: Decimal | None


@dataclass
class Report:
    organization: Organization
    spec: ReportSpec
    buckets: list[Bucket]
    meters: list[Meter]
    rows: list[ReportRow] = field(default_factory=list)

    @property
    def grouped(self) -> bool:
        return bool(self.spec.group_by)

    def charts(self) -> list[dict]:
        """Per meter, what Chart.js reads (json_script): bucket labels and one dataset per group
        (the first CHART_GROUPS by total), values as decimal text."""
        labels = [b.label(self.spec.granularity) for b in self.buckets]
        index = {b.start: i for i, b in enumerate(self.buckets)}
        out = []
        for meter in self.meters:
            series: dict[str, list] = {}
            for row in self.rows:
                if row.meter.pk != meter.pk:
                    continue
                values = series.setdefault(row.group or meter.name, [None] * len(labels))
                values[index[row.bucket.start]] = None if row.value is None else str(row.value)
            ranked = sorted(series.items(), key=lambda kv: -sum(Decimal(v) for v in kv[1] if v is not None))
            out.append(
                {
                    "id": f"report-chart-{meter.code}",
                    "meter": meter.name,
                    "labels": labels,
                    "datasets": [{"label": name, "values": values} for name, values in ranked[:CHART_GROUPS]],
                    "more": max(0, len(ranked) - CHART_GROUPS),
                }
            )
        return out


def _groups(meter: Meter, path: str, result) -> list[tuple[str, Decimal | None]]:
    if len(meter.group_by) == 1:
        return [(g["group"].get(path) or NO_GROUP, g["value"]) for g in result.groups]
    folded: dict[str, list] = {}
    for g in result.groups:
        folded.setdefault(g["group"].get(path) or NO_GROUP, []).append(g["value"])
    fold = _FOLD[meter.aggregation]
    out = []
    for key in sorted(folded, key=lambda k: (k == NO_GROUP, k)):
        present = [v for v in folded[key] if v is not None]
        out.append((key, fold(present) if present else None))
    return out


def report_build(
    *, organization: Organization, spec: ReportSpec, progress: Callable[[int, int], None] | None = None
) -> Report:
    """The report's rows, bucket by bucket and meter by meter (in the meters' order); a grouped
    meter has a row per group with usage in the bucket, an ungrouped one a row per bucket.
    `progress(done, total)` is called after each statement (the task's progress bar)."""
    zone = ZoneInfo(organization.timezone)
    customer = organization.external_id
    meters = [m for m in meter_list() if m.code in spec.meters]
    buckets = report_buckets(spec=spec, zone=zone)
    report = Report(organization, spec, buckets, meters)
    total, done = sum(_statements(m, spec, buckets) for m in meters), 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    cells: dict[tuple[int, int], list[ReportRow]] = {}  # (bucket, meter) -> rows
    for index, meter in enumerate(meters):
        mode = _mode(meter, spec, buckets)
        if mode == "bounds":
            bounds = [b.start for b in buckets] + [buckets[-1].end]
            series = usage_get(meter=meter, customer=customer, start=bounds[0], end=bounds[-1], bounds=bounds).series
            for b, (bucket, point) in enumerate(zip(buckets, series, strict=True)):
                cells[b, index] = [ReportRow(bucket, meter, None, point["value"])]
            step()
            continue
        if mode == "fold":
            hours: list[tuple[datetime, datetime, Decimal | None]] = []
            for start, end in _chunks(buckets[0].start, buckets[-1].end):
                series = usage_get(meter=meter, customer=customer, start=start, end=end, window="hour").series
                hours += [
                    (p["start"], series[i + 1]["start"] if i + 1 < len(series) else end, p["value"])
                    for i, p in enumerate(series)
                ]
                step()
            cursor = 0
            for b, bucket in enumerate(buckets):
                mine = []
                while cursor < len(hours) and hours[cursor][0] < bucket.end:
                    mine.append(hours[cursor])
                    cursor += 1
                cells[b, index] = [ReportRow(bucket, meter, None, _fold(meter.aggregation, mine))]
            continue
        grouped = bool(spec.group_by) and spec.group_by in meter.group_by
        for b, bucket in enumerate(buckets):
            result = usage_get(meter=meter, customer=customer, start=bucket.start, end=bucket.end, group_by=grouped)
            if grouped:
                cells[b, index] = [ReportRow(bucket, meter, k, v) for k, v in _groups(meter, spec.group_by, result)]
            else:
                cells[b, index] = [ReportRow(bucket, meter, None, result.value)]
            step()
    report.rows = [row for b in range(len(buckets)) for index in range(len(meters)) for row in cells[b, index]]
    return report
