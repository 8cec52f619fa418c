// helpgate console: keyboard shortcuts. No inline script anywhere (the Content-Security-Policy forbids it).
"use strict";
(function () {
  function typing(event) {
    const target = event.target;
    return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }
  function rows() {
    return Array.from(document.querySelectorAll("table.tickets tbody tr[data-href]"));
  }
  function move(step) {
    const all = rows();
    if (all.length === 0) return;
    const current = all.findIndex((row) => row.classList.contains("selected"));
    const next = Math.max(0, Math.min(all.length - 1, current + step));
    all.forEach((row) => row.classList.remove("selected"));
    all[next].classList.add("selected");
    all[next].scrollIntoView({ block: "nearest" });
  }
  function focus(id) {
    const field = document.getElementById(id);
    if (field) field.focus();
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    const selected = document.querySelector("table.tickets tr.selected");
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter":
        if (!selected) return;
        window.location.assign(selected.dataset.href);
        break;
      case "r": focus("reply-text") ; focus("answer-text"); break;
      case "n": focus("note-text"); break;
      case "s": {
        const solve = document.getElementById("solve-button");
        if (solve && !solve.disabled) solve.click();
        break;
      }
      case "?": {
        const keys = document.getElementById("keys");
        if (keys && !keys.open) keys.showModal();
        break;
      }
      default: return;
    }
    event.preventDefault();
  });
  // A row clicked anywhere opens its ticket, as Enter does.
  document.addEventListener("click", function (event) {
    const row = event.target instanceof Element ? event.target.closest("tr[data-href]") : null;
    if (row && !(event.target instanceof HTMLAnchorElement)) window.location.assign(row.dataset.href);
  });
})();
