// architect live updates. Pages work without this file: it keeps an open page current.
// One EventSource on /api/events while the tab is visible; on an event that concerns the page, the page is fetched
// again (as a passive read: it does not keep the session alive) and its <main> replaced,
// unless the person is typing into a form on it (then a notice offers the refresh). The
// navigation badges are refetched from /api/overview/badges on every event that may move them.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch || !window.DOMParser) return;
  var main = document.querySelector("main");
  if (!main || document.body.classList.contains("centered")) return;

  var path = location.pathname;
  // Which topics change what this page shows. Pages with their own stream (a pane) have none.
  var PAGES = [
    [/^\/$/, ["errors", "tasks", "workers", "nodes", "sessions", "prompts", "interactions", "work", "runs"]],
    [/^\/errors/, ["errors", "work"]],
    [/^\/tasks/, ["tasks", "workers"]],
    [/^\/workers/, ["workers", "tasks"]],
    [/^\/nodes/, ["nodes", "metrics"]],
    [/^\/tmux\/?$/, ["sessions"]],
    [/^\/assigner/, ["prompts", "sessions"]],
    [/^\/interactions/, ["interactions", "sessions"]],
    [/^\/(projects|milestones|features|bugs|devops)/, ["work", "prompts"]],
    [/^\/activity/, ["work", "tasks", "nodes", "errors"]],
    // A run is recorded just before its task completes.
    [/^\/testing/, ["tasks"]]
  ];
  var BADGES = ["errors", "tasks", "nodes", "prompts", "interactions", "work"];
  var pageTopics = [];
  for (var i = 0; i < PAGES.length; i++) {
    if (PAGES[i][0].test(path)) { pageTopics = PAGES[i][1]; break; }
  }
  var topics = BADGES.slice();
  pageTopics.forEach(function (t) { if (topics.indexOf(t) < 0) topics.push(t); });

  // ---- badges ----
  var badgeTimer = null;
  function refreshBadges() {
    badgeTimer = null;
    fetch("/api/overview/badges", { credentials: "same-origin", headers: { "X-Architect-Passive": "1" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (counts) {
        if (!counts) return;
        var show = function (el, n) {
          el.textContent = n > 99 ? "99+" : String(n);
          el.hidden = n === 0;
          el.setAttribute("aria-label", n + " waiting");
        };
        var els = document.querySelectorAll("[data-badge]"), total = 0;
        for (var j = 0; j < els.length; j++) {
          var n = counts[els[j].getAttribute("data-badge")] || 0;
          total += n;
          show(els[j], n);
        }
        // On a phone the navigation is folded: its button carries the sum.
        var t = document.querySelector("[data-badge-total]");
        if (t) show(t, total);
      }).catch(function () {});
  }
  function badgesSoon() { if (!badgeTimer) badgeTimer = setTimeout(refreshBadges, 250); }

  // ---- the page ----
  var dirty = false;   // the person typed into a form on this page
  main.addEventListener("input", function () { dirty = true; });
  var pageTimer = null, inFlight = false, again = false;
  var notice = null;

  function busy() {
    var a = document.activeElement;
    if (dirty) return true;
    if (a && a !== document.body && main.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)) return true;
    return main.querySelector("details[open]") !== null;
  }

  function offerRefresh() {
    if (notice) return;
    notice = document.createElement("div");
    notice.className = "flash live-notice";
    notice.setAttribute("role", "status");
    notice.innerHTML = 'This page has changed. <button type="button" class="link">Show the new state</button>';
    notice.querySelector("button").addEventListener("click", function () { location.reload(); });
    main.parentNode.insertBefore(notice, main);
  }

  function refreshPage() {
    pageTimer = null;
    if (inFlight) { again = true; return; }
    if (busy()) { offerRefresh(); return; }
    inFlight = true;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Architect-Passive": "1" } })
      .then(function (r) {
        // Signed out meanwhile: the login page is not this page.
        if (!r.ok || r.redirected) return null;
        return r.text();
      })
      .then(function (html) {
        if (!html || busy()) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("main");
        if (fresh && fresh.innerHTML !== main.innerHTML) {
          var top = main.scrollTop;
          main.innerHTML = fresh.innerHTML;
          main.scrollTop = top;
          document.dispatchEvent(new CustomEvent("architect:refreshed"));
        }
      })
      .catch(function () {})
      .then(function () {
        inFlight = false;
        if (again) { again = false; pageSoon(); }
      });
  }
  function pageSoon() { if (!pageTimer) pageTimer = setTimeout(refreshPage, 300); }

  // ---- the stream ----
  var es = null;
  function connect() {
    es = new EventSource("/api/events?topics=" + topics.join(","));
    es.addEventListener("ready", function () { document.body.setAttribute("data-live", "on"); });
    topics.forEach(function (t) {
      es.addEventListener(t, function () {
        if (BADGES.indexOf(t) >= 0) badgesSoon();
        if (pageTopics.indexOf(t) >= 0) pageSoon();
      });
    });
    es.addEventListener("resync", function () { badgesSoon(); if (pageTopics.length) pageSoon(); });
    es.addEventListener("signed_out", function () {
      es.close();
      document.body.setAttribute("data-live", "off");
      document.dispatchEvent(new CustomEvent("architect:signed-out"));
    });
    es.onerror = function () {
      document.body.setAttribute("data-live", "reconnecting");
    };
  }
  // Browsers allow a handful of connections per server: a tab in the background gives its
  // stream up (after a short grace) and catches up when it is shown again.
  var hideTimer = null;
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      hideTimer = setTimeout(function () {
        if (es) { es.close(); es = null; document.body.setAttribute("data-live", "paused"); }
      }, 10000);
    } else {
      clearTimeout(hideTimer);
      if (!es) { connect(); badgesSoon(); if (pageTopics.length) pageSoon(); }
    }
  });
  // A page left for another may be kept frozen in the back-forward cache with its stream
  // open (its timers stopped): close the stream as the page goes, open it when it comes back.
  window.addEventListener("pagehide", function () {
    if (es) { es.close(); es = null; }
  });
  window.addEventListener("pageshow", function (e) {
    if (e.persisted && !es) { connect(); badgesSoon(); if (pageTopics.length) pageSoon(); }
  });
  refreshBadges();
  connect();
})();
