// tmux panel: the live pane view. Without JavaScript the page shows the pane as loaded.
(function () {
  const pre = document.getElementById("tmux-pane");
  const live = document.getElementById("tmux-live");
  if (!pre || !window.EventSource) return;
  const es = new EventSource(pre.dataset.stream);
  es.addEventListener("pane", (e) => { pre.textContent = e.data; live.textContent = "(live)"; });
  es.addEventListener("unreachable", (e) => { live.textContent = "(node not answering: " + e.data + ")"; });
  es.addEventListener("gone", () => { live.textContent = "(session ended)"; es.close(); });
  es.onerror = () => { live.textContent = "(reconnecting…)"; };
  es.onopen = () => { live.textContent = "(live)"; };
  // A page left for another (or kept in the back-forward cache) gives its stream up at once:
  // browsers allow six connections per host, and a held stream would hold one of them.
  window.addEventListener("pagehide", () => es.close());
})();
