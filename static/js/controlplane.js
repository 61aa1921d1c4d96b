// One zone per page. The server renders every time in the viewer's choice (cookie cp_tz:
// "UTC" or the browser's zone) with one format; <time datetime> elements that other
// templates render their own way are rewritten here into that same format and zone.
const ZONE_COOKIE = "cp_tz";

function chosenZone() {
  const m = document.cookie.match(/(?:^|; )cp_tz=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "UTC";
}

function formatMoment(d, zone, style) {
  const parts = {};
  new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short",
  }).formatToParts(d).forEach((p) => { parts[p.type] = p.value; });
  const date = `${parts.year}-${parts.month}-${parts.day}`;
  const time = `${parts.hour}:${parts.minute}:${parts.second}`;
  const name = zone === "UTC" ? "UTC" : parts.timeZoneName;
  if (style === "time") return `${time} ${name}`;
  if (style === "date") return date;
  return `${date} ${time} ${name}`;
}

function localiseTimes(root) {
  const zone = chosenZone();
  root.querySelectorAll("time[datetime]:not([data-cp-time])").forEach((el) => {
    const d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) {
      el.title = el.getAttribute("datetime");
      el.textContent = formatMoment(d, zone, "datetime");
    }
  });
}

// Every live (polled) panel says when it was last updated. Our partials render the time
// themselves (.updated); a panel whose partial does not gets a stamp here, after each swap.
function stampLivePanels(root) {
  const zone = chosenZone();
  const panels = [];
  if (root.matches && root.matches("[hx-trigger*='every']")) panels.push(root);
  root.querySelectorAll("[hx-trigger*='every']").forEach((el) => panels.push(el));
  panels.forEach((el) => {
    if (el.querySelector(".updated:not([data-js-stamp])")) return;
    let stamp = el.querySelector("[data-js-stamp]");
    if (!stamp) {
      stamp = document.createElement("small");
      stamp.className = "updated";
      stamp.dataset.jsStamp = "";
      const heading = el.querySelector("h2");
      if (heading) heading.append(stamp); else el.prepend(stamp);
    }
    stamp.textContent = `updated ${formatMoment(new Date(), zone, "time")}`;
  });
}

function setZone(zone) {
  document.cookie = `${ZONE_COOKIE}=${zone}; path=/; max-age=31536000; samesite=lax`;
  window.location.reload();
}

document.addEventListener("DOMContentLoaded", () => {
  localiseTimes(document);
  stampLivePanels(document);
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const zone = document.querySelector("[data-local-zone]");
  if (zone) zone.textContent = browserZone;
  document.querySelectorAll("[data-set-zone]").forEach((el) => {
    el.hidden = false;
    el.addEventListener("click", (e) => {
      e.preventDefault();
      setZone(el.dataset.setZone === "local" ? browserZone : "UTC");
    });
  });
});
document.addEventListener("htmx:afterSwap", (e) => {
  localiseTimes(e.target);
  stampLivePanels(e.target);
});
