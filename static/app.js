// architect dashboard enhancements. Pages work without this file; it adds the session
// countdown, the "Stay Logged In" modal and confirmation prompts.
(function () {
  "use strict";
  var WARN_AT = 300; // seconds before expiry at which the modal opens
  var body = document.body;
  var left = parseInt(body.getAttribute("data-expires-in") || "0", 10);
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var label = document.getElementById("session-left");
  var modal = document.getElementById("session-modal");
  var modalLeft = document.getElementById("session-modal-left");
  var deadline = Date.now() + left * 1000;

  function fmt(s) {
    s = Math.max(0, Math.floor(s));
    var m = Math.floor(s / 60), r = s % 60;
    return m + ":" + (r < 10 ? "0" : "") + r;
  }

  function tick() {
    var s = (deadline - Date.now()) / 1000;
    if (label) label.textContent = fmt(s);
    if (modal) {
      if (s <= WARN_AT && s > 0) { modal.hidden = false; if (modalLeft) modalLeft.textContent = fmt(s); }
      else if (s > WARN_AT) { modal.hidden = true; }
    }
    if (s <= 0) confirmExpiry();
  }

  // The countdown reached zero: ask the server (a passive read, which does not extend the
  // session) before leaving. Still valid (another tab was active, or the clocks differ by a
  // second): count on. Expired: to the login page, which no longer bounces back.
  var checking = false;
  function confirmExpiry() {
    if (checking) return;
    checking = true;
    fetch("/api/session", { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) return { seconds_left: 0 };
      return r.ok ? r.json() : null;
    }).then(function (j) {
      checking = false;
      if (j && typeof j.seconds_left === "number" && j.seconds_left > 0) {
        deadline = Date.now() + j.seconds_left * 1000;
      } else if (j) {
        window.location.href = "/login?expired=1&next=" + encodeURIComponent(location.pathname + location.search);
      } else {
        deadline = Date.now() + 5000; // the server did not answer: ask again shortly
      }
    }).catch(function () { checking = false; deadline = Date.now() + 5000; });
  }
  document.addEventListener("architect:signed-out", confirmExpiry);

  // Re-read the real time left now and then (another tab may have extended the session).
  function sync() {
    fetch("/api/session", { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) { deadline = Date.now(); return null; }
      return r.ok ? r.json() : null;
    }).then(function (j) {
      if (j && typeof j.seconds_left === "number") deadline = Date.now() + j.seconds_left * 1000;
    }).catch(function () {});
  }

  var stay = document.getElementById("session-stay");
  if (stay) stay.addEventListener("click", function () {
    fetch("/api/session/extend", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) { if (j && typeof j.seconds_left === "number") { deadline = Date.now() + j.seconds_left * 1000; tick(); } });
  });

  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  if (label && left > 0) { tick(); setInterval(tick, 1000); setInterval(sync, 60000); }
})();

// Pickers that depend on another field (a milestone on its project): show only the options
// grouped under the chosen value. Without this script every group shows, labelled.
(function () {
  "use strict";
  document.querySelectorAll("select[data-filter-by]").forEach(function (sel) {
    var by = sel.form && sel.form.elements[sel.getAttribute("data-filter-by")];
    if (!by) return;
    function sync() {
      sel.querySelectorAll("optgroup[data-project]").forEach(function (g) {
        var show = g.getAttribute("data-project") === by.value;
        g.hidden = !show;
        g.disabled = !show;
      });
      var chosen = sel.options[sel.selectedIndex];
      if (chosen && chosen.parentNode.disabled) sel.value = "";
    }
    by.addEventListener("change", sync);
    sync();
  });
})();
