"""The harness itself: a widget renders in JupyterLab and a click reaches the kernel."""

from __future__ import annotations

import pytest

from .conftest import open_notebook

pytestmark = pytest.mark.browser

CLICKER = '''\
import anywidget, traitlets

class Clicker(anywidget.AnyWidget):
    _esm = """
    export default {
      render({ model, el }) {
        const b = document.createElement("button");
        b.className = "wb-smoke";
        b.textContent = "clicked " + model.get("clicks");
        b.onclick = () => { model.set("clicks", model.get("clicks") + 1); model.save_changes(); };
        model.on("change:clicks", () => { b.textContent = "clicked " + model.get("clicks"); });
        el.appendChild(b);
      }
    };
    """
    clicks = traitlets.Int(0).tag(sync=True)

clicker = Clicker()
clicker.observe(lambda change: report("smoke", clicks=change["new"]), names="clicks")
report("smoke", clicks=0)
clicker
'''


def test_anywidget_click_reaches_kernel(server, page):
    server.clear_state("smoke")
    path = server.write_notebook("smoke.ipynb", [CLICKER])
    open_notebook(page, server, path)
    assert server.wait_state("smoke")["clicks"] == 0

    button = page.locator("button.wb-smoke")
    button.wait_for()
    button.click()
    assert server.wait_state("smoke", lambda s: s["clicks"] >= 1)["clicks"] == 1
    page.locator("button.wb-smoke", has_text="clicked 1").wait_for()
