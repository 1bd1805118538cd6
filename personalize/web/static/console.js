// The console's live parts, in a few lines of plain JavaScript (no build chain):
// an element with data-refresh="URL" has its content replaced every data-every seconds
// (default 3) by the HTML fragment the URL answers (same origin, the session cookie).
// A form with data-confirm="text" asks before it is sent.
document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll("[data-refresh]")) {
    const every = 1000 * Number(el.dataset.every || 3);
    setInterval(async () => {
      try {
        const answer = await fetch(el.dataset.refresh, { credentials: "same-origin", redirect: "error" });
        if (answer.ok) { el.innerHTML = await answer.text(); }
      } catch (e) { /* the next tick tries again; a lost session shows on the next click */ }
    }, every);
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  }
});
