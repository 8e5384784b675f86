// HistoryView front end: the commit log and the chosen commit's changes, drawn from the
// traits the kernel fills; a click on a commit only reports which one was chosen.
// (`h` and `drawContent` come from content.js, put in front of this module by Python.)

function drawLog(model, logEl, choose) {
  logEl.replaceChildren();
  const selected = model.get("selected");
  const entry = (key, title, meta) => {
    const b = h("button", "wb-commit");
    b.type = "button";
    b.classList.toggle("wb-chosen", selected === key);
    b.append(title, h("div", "wb-commit-meta", meta));
    b.addEventListener("click", () => choose(key));
    logEl.appendChild(b);
  };
  const n = model.get("uncommitted");
  const working = h("div", null);
  working.append(h("strong", null, "uncommitted changes"), document.createTextNode(` (${n})`));
  entry("working", working, `on ${model.get("branch")}`);
  for (const c of model.get("commits") || []) {
    const title = h("div", null);
    title.append(h("span", "wb-commit-id", c.commit), document.createTextNode(` ${c.message}`));
    entry(c.commit, title, `${c.time} · ${c.author} · +${c.added} ~${c.changed} -${c.removed} · ${c.n_labels} labels`);
  }
}

function drawChanges(model, changesEl) {
  changesEl.replaceChildren(h("div", "wb-changes-title", model.get("diff_title")));
  const rows = model.get("diff") || [];
  if (!rows.length) changesEl.appendChild(h("div", "wb-placeholder", "no changes"));
  for (const r of rows) {
    const row = h("div", "wb-change");
    row.dataset.itemId = r.item_id;
    row.appendChild(drawContent(r.render, { thumb: true }));
    const labels = h("div", `wb-change-labels wb-${r.change}`,
      `${r.before ?? "(none)"} → ${r.after ?? "(none)"}`);
    const who = h("div", "wb-change-who", `${r.item_id} · ${r.change} by ${r.annotator ?? "?"} (${r.source ?? "?"})`);
    const text = h("div", null);
    text.append(labels, who);
    row.appendChild(text);
    changesEl.appendChild(row);
  }
}

function render({ model, el }) {
  const root = h("div", "wb-history");
  const logEl = h("div", "wb-log");
  const changesEl = h("div", "wb-changes");
  root.append(logEl, changesEl);
  el.appendChild(root);
  const choose = (key) => { model.set("selected", key); model.save_changes(); };
  const draw = () => { drawLog(model, logEl, choose); drawChanges(model, changesEl); };
  const names = ["commits", "uncommitted", "selected", "diff", "diff_title", "branch"];
  for (const name of names) model.on(`change:${name}`, draw);
  draw();
  return () => { for (const name of names) model.off(`change:${name}`, draw); };
}

export default { render };
