// Show times in the viewer's zone: server renders UTC into <time datetime>, we localise here.
function localiseTimes(root) {
  root.querySelectorAll("time[datetime]").forEach((el) => {
    const d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) {
      el.title = el.getAttribute("datetime");
      el.textContent = d.toLocaleString([], { dateStyle: "short", timeStyle: "medium" });
    }
  });
  const zone = document.querySelector("[data-local-zone]");
  if (zone) zone.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone;
}
document.addEventListener("DOMContentLoaded", () => localiseTimes(document));
document.addEventListener("htmx:afterSwap", (e) => localiseTimes(e.target));
