"""Turning one pool item into what the widget shows: PNG, text or key/value rows.

Rendering returns plain JSON-able data, never HTML: the browser puts text in with
`textContent`, so an item whose text is `<img onerror=...>` shows those characters and
runs nothing. An item that cannot be shown (a missing or corrupt image file) renders as
an "error" placeholder with the reason, so the widget can show it and let it be skipped.
"""

from __future__ import annotations

import base64
import io

import numpy as np

MAX_TABLE_ROWS = 40


def render_item(pool, position: int) -> dict:
    item_id = pool.item_ids[position]
    if pool.kind == "image":
        return _render_image(pool, position)
    if pool.kind == "text":
        return {"kind": "text", "text": str(pool.items["text"].iloc[position])}
    if pool.kind == "table":
        row = pool.items.iloc[position]
        rows = [[str(k), _fmt(v)] for k, v in row.items()]
        names = pool.feature_names or []
        if names and not set(names) <= set(pool.items.columns):  # features left on disk (Parquet)
            rows += [[name, _fmt(v)] for name, v in zip(names, pool.X[position]) if name not in row]
        return {"kind": "table", "rows": rows[:MAX_TABLE_ROWS]}
    x = pool.X[position]
    rows = [[f"x{i}", _fmt(v)] for i, v in enumerate(x[:MAX_TABLE_ROWS])]
    if len(x) > MAX_TABLE_ROWS:
        rows.append(["…", f"{len(x) - MAX_TABLE_ROWS} more features"])
    return {"kind": "table", "rows": rows, "item_id": item_id}


def image_png(array: np.ndarray) -> bytes:
    """PNG bytes of an image with values in [0, 1] (H x W or H x W x C)."""
    from PIL import Image

    a = np.clip(np.asarray(array, dtype=np.float32), 0, 1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    buf = io.BytesIO()
    Image.fromarray((a * 255).round().astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _render_image(pool, position: int) -> dict:
    if pool.image_source == "path":
        from PIL import Image, UnidentifiedImageError

        path = pool.items["path"].iloc[position]
        try:
            with Image.open(path) as im:
                im.load()
                width, height = im.size
                if im.mode.startswith("I;16") or im.mode in ("I", "F"):  # converting would clip at 255
                    png = image_png(np.asarray(im, np.float32) / (pool.image_scale or 65535.0))
                else:
                    buf = io.BytesIO()
                    im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB").save(buf, "PNG")
                    png = buf.getvalue()
        except FileNotFoundError:
            return {"kind": "error", "reason": f"image file not found: {path}"}
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            return {"kind": "error", "reason": f"cannot read image {path}: {e}"}
    else:
        image = pool.X[position]
        sizes = getattr(pool, "image_sizes", None)
        if sizes is not None:  # the image at its own size, not the canvas it is padded to
            image = image[:int(sizes[position][1]), :int(sizes[position][0])]
        png = image_png(image)
        height, width = image.shape[:2]
    return {"kind": "image", "mime": "image/png", "data": base64.b64encode(png).decode("ascii"),
            "width": int(width), "height": int(height)}


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)
