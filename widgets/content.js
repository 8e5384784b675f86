// Shared by the workbench's widgets (prepended to each widget's module by the Python side,
// so there is still no build step): building DOM nodes and drawing one item. Item data only
// ever goes in with textContent or as an image's data URL, never as HTML.

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function pct(x) {
  return x === null || x === undefined ? "" : `${Math.round(x * 100)}%`;
}

// One item's visual: an image, a text, a key/value table or a placeholder with the reason.
function drawContent(render, { thumb = false } = {}) {
  const box = h("div", "wb-content");
  if (!render || typeof render !== "object") {
    box.appendChild(h("div", "wb-placeholder", "This item has nothing to show."));
    return box;
  }
  if (render.kind === "image" && typeof render.data === "string"
      && /^image\/(png|jpeg|gif|webp|bmp)$/.test(render.mime || "")) {
    const img = h("img", "wb-image");
    const w = Number(render.width) || 28, hgt = Number(render.height) || 28;
    const target = thumb ? 72 : 280;
    const scale = Math.max(1, Math.floor(target / Math.max(w, hgt)));
    const width = Math.min(w * scale, thumb ? 96 : 560);
    img.style.width = `${width}px`;
    img.style.height = `${Math.round(width * hgt / w)}px`;
    if (Math.max(w, hgt) <= 64) img.classList.add("wb-pixelated");
    img.alt = thumb ? "" : "item image";
    img.src = `data:${render.mime};base64,${render.data}`;
    box.appendChild(img);
  } else if (render.kind === "text") {
    box.appendChild(h("pre", thumb ? "wb-text wb-text-thumb" : "wb-text", render.text));
  } else if (render.kind === "table") {
    const table = h("table", "wb-table");
    for (const row of render.rows || []) {
      const tr = h("tr");
      tr.appendChild(h("th", null, row[0]));
      tr.appendChild(h("td", null, row[1]));
      table.appendChild(tr);
    }
    box.appendChild(table);
  } else {
    const reason = render.kind === "error" ? render.reason : `unknown item kind ${render.kind}`;
    const ph = h("div", "wb-placeholder wb-item-error");
    ph.appendChild(h("strong", null, "Cannot show this item"));
    ph.appendChild(h("div", "wb-reason", reason));
    if (!thumb) ph.appendChild(h("div", "wb-hint", "Press s to skip it."));
    box.appendChild(ph);
  }
  return box;
}
