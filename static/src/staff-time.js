// Staff times in the staff member's own time zone, the one their browser runs in: the server
// writes each instant as <time datetime="…Z" data-local-time>… UTC</time>, which is what shows
// without JavaScript; this rewrites the text in the browser's zone and names the zone, so an
// instant is never read as local when it is UTC or the other way round. Month names are spelled
// out here rather than by Intl, whose short names differ between ICU versions ("Sep", "Sept").
(function () {
  "use strict";
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) return;
  const format = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, year: "numeric", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  document.querySelectorAll("time[data-local-time]").forEach(function (el) {
    const instant = new Date(el.getAttribute("datetime"));
    if (isNaN(instant.getTime())) return;
    const part = {};
    format.formatToParts(instant).forEach(function (p) { part[p.type] = p.value; });
    el.title = el.textContent;  // the UTC text, on hover
    el.textContent = Number(part.day) + " " + months[Number(part.month) - 1] + " " + part.year + " " + part.hour + ":" + part.minute + " " + zone;
  });
})();
