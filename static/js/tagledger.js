// Progressive enhancement only: every page works without this file.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1200);
  });
});

// Compare: at most two builds checked; the button says what it will do.
function updateCompareSubmit(form) {
  const submit = form.querySelector("[data-compare-submit]");
  if (submit) submit.disabled = form.querySelectorAll("input[data-compare]:checked").length !== 2;
}
document.addEventListener("change", (event) => {
  const box = event.target.closest("input[data-compare]");
  if (!box) return;
  const form = box.form;
  const checked = [...form.querySelectorAll("input[data-compare]:checked")];
  if (checked.length > 2) checked.filter((other) => other !== box)[0].checked = false;
  updateCompareSubmit(form);
});
// Until two are ticked the button waits (a reload may keep the boxes ticked: count them).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form:has([data-compare-submit])").forEach(updateCompareSubmit);
});

// A link to one platform of a build (from search) opens that platform's details.
function openTargetedDetails() {
  const target = location.hash && document.getElementById(location.hash.slice(1));
  if (target instanceof HTMLDetailsElement) target.open = true;
}
document.addEventListener("DOMContentLoaded", openTargetedDetails);
window.addEventListener("hashchange", openTargetedDetails);

// A table wider than a phone scrolls in its own box (CSS); keyboard users reach that box's hidden
// columns only if it can take focus, which a table of plain text cannot otherwise do.
function focusableScrollers(root) {
  for (const table of root.querySelectorAll("table.list")) {
    if (table.scrollWidth > table.clientWidth + 1) {
      table.tabIndex = 0;
      table.dataset.scrolls = "";
    } else if ("scrolls" in table.dataset) {
      table.removeAttribute("tabindex");
      delete table.dataset.scrolls;
    }
  }
}
document.addEventListener("DOMContentLoaded", () => focusableScrollers(document));
document.addEventListener("htmx:afterSettle", () => focusableScrollers(document));
window.addEventListener("resize", () => focusableScrollers(document));
