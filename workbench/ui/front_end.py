"""The widgets' front-end files, read from disk and put together into one ES module each.

anywidget loads a widget's `_esm` as one module from a blob URL, where relative imports do not
resolve, so the front end has no build step and no imports: a widget's module is the shared
drawing code (`content.js`) followed by the widget's own files, joined in a fixed order. The
label widget's front end is split into parts, one idea each (`LABEL_PARTS`; the map is
`widgets/label/README.md`).
"""

from __future__ import annotations

from pathlib import Path

# The label widget's parts, in the order they are joined: the state first, the shared view
# and the kernel connection, one part per mode, the keys, and the widget that puts them
# together (and holds the module's one `export default`) last.
LABEL_PARTS = ("label/state.js", "label/view.js", "label/kernel.js", "label/undo.js",
               "label/single.js", "label/review.js", "label/spans.js", "label/boxes.js",
               "label/grid.js", "label/keys.js", "label/widget.js")


def _static_dir() -> Path:
    """The front-end files: `_static` inside an installed wheel, `widgets/` in a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "_static"
    if (packaged / "content.js").exists():
        return packaged
    return Path(__file__).resolve().parents[2] / "widgets"


STATIC = _static_dir()


def front_end(*names: str) -> str:
    """A widget's ES module: the shared drawing code (content.js), then the widget's own files
    in the order given, each after a comment naming it (a line in the browser's console can be
    traced back to its file). Plain concatenation, so the front end needs no build step."""
    parts = [f"// ---- {name} ----\n" + (STATIC / name).read_text() for name in ("content.js", *names)]
    return "\n".join(parts)


def label_module() -> str:
    """The label widget's ES module (see LABEL_PARTS)."""
    return front_end(*LABEL_PARTS)
