// Tasks panel: show only the create-form fields of the chosen task type. Without JavaScript
// every field shows and the server uses the chosen type's.
(function () {
  const form = document.getElementById("task-form");
  const select = document.getElementById("task-type");
  if (!form || !select) return;
  const sync = () => {
    for (const el of form.querySelectorAll("[data-types]")) {
      el.hidden = !el.dataset.types.split(" ").includes(select.value);
    }
  };
  select.addEventListener("change", sync);
  sync();
})();
