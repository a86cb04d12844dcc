// ackwatch board: keeps the page live without a reload.
// Short polling: every half second GET /live with the version shown (If-None-Match); the
// server answers 304 while nothing changed, else the new board (HTML it rendered and
// escaped). A failed poll (the daemon restarting) keeps the page and says it is stale.
// Every second the countdowns tick and items turn amber (nudge due) or red (overdue).
"use strict";

(function () {
  const POLL_MS = 500;
  let offset = 0; // server clock minus this clock, in ms
  let lastLive = Date.now();
  let stale = false;

  function main() { return document.getElementById("live"); }

  function syncClock(el) {
    const serverNow = Date.parse(el.dataset.now);
    if (!Number.isNaN(serverNow)) offset = serverNow - Date.now();
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function countdown(ms) { // as board.countdown: the distance, either way
    const s = Math.floor(Math.abs(ms) / 1000);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60), sec = s % 60;
    return d ? d + "d " + h + "h" : h ? h + "h " + pad(m) + "m" : m + "m " + pad(sec) + "s";
  }

  const LABELS = { ok: "Time left:", soon: "Due soon, left:", overdue: "Overdue by:" };

  function tick() {
    const now = Date.now() + offset;
    for (const li of document.querySelectorAll("li.item[data-deadline]")) {
      const deadline = Date.parse(li.dataset.deadline);
      const nudge = Date.parse(li.dataset.nudge);
      const state = now >= deadline ? "overdue" : now >= nudge ? "soon" : "ok";
      if (!li.classList.contains(state)) {
        li.classList.remove("ok", "soon", "overdue");
        li.classList.add(state);
        const label = li.querySelector(".label");
        if (label) {
          label.textContent = LABELS[state];
        }
      }
      const cd = li.querySelector(".countdown");
      if (cd) cd.textContent = countdown(deadline - now);
    }
    const status = document.getElementById("status");
    if (stale && status) {
      const ago = Math.round((Date.now() - lastLive) / 1000);
      status.textContent = "Stale: no answer from ackwatch for " + ago + " s (restarting?), retrying";
    }
  }

  function setStale(isStale) {
    stale = isStale;
    document.body.classList.toggle("stale", isStale);
    if (!isStale) document.getElementById("status").textContent = "Live";
  }

  async function poll() {
    const el = main();
    const abort = new AbortController();
    const timer = setTimeout(function () { abort.abort(); }, 3000);
    try {
      const response = await fetch("/live", {
        headers: { "If-None-Match": '"' + el.dataset.version + '"' },
        cache: "no-store", credentials: "same-origin", redirect: "error",
        signal: abort.signal,
      });
      if (response.status === 200) {
        const version = (response.headers.get("ETag") || "").replace(/"/g, "");
        const html = await response.text();
        el.innerHTML = html; // the server's own template output, every value escaped
        el.dataset.version = version;
        el.dataset.now = response.headers.get("X-Board-Now") || el.dataset.now;
        syncClock(el);
        tick();
      } else if (response.status !== 304) {
        throw new Error("status " + response.status);
      }
      lastLive = Date.now();
      setStale(false);
    } catch (e) {
      setStale(true);
    } finally {
      clearTimeout(timer);
    }
  }

  async function loop() {
    await poll();
    setTimeout(loop, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    syncClock(main());
    tick();
    setInterval(tick, 1000);
    setTimeout(loop, POLL_MS);
  });
})();
