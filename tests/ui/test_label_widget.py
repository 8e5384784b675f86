"""LabelWidget without a browser: messages in, session calls, store events and replies out.

`Browser` below stands in for the front end (widgets/label/): it holds the item on screen and a buffer, mints
event ids, sends each label with the role its item was shown in, keeps an undo stack of
actions and applies the kernel's replies the way the front end does. The real front end is
tested in tests/browser/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
import uuid

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from workbench import LabelStore, Pool, Session, datasets, logistic_regression
from workbench.ui.front_end import LABEL_PARTS, _static_dir, label_module
from workbench.ui.label_widget import LabelWidget, class_keys


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.images, data.target


@pytest.fixture
def session(digits, tmp_path):
    X, y = digits
    pool = Pool.from_arrays(X[:150], y[:150], X_test=X[150:300], y_test=y[150:300], name="digits")
    s = Session(pool, store=tmp_path / "labels.wbstore", learner=LogisticRegression(max_iter=300))
    yield s
    s.close()


class Browser:
    """Stands in for the front end: sends messages the way widgets/label/ does, keeps the replies."""

    def __init__(self, widget: LabelWidget):
        self.widget = widget
        self.sent: list[dict] = []
        self.seq = 0
        self.current: dict | None = None
        self.buffer: list[dict] = []
        self.done: set[str] = set()
        self.actions: list[list[str]] = []
        self.shown_as: dict[str, str] = {}  # item -> the role it was on screen with when labeled
        widget.send = self._receive

    # -- kernel -> browser ---------------------------------------------------------------------
    def _receive(self, content, buffers=None):
        self.sent.append(content)
        kind = content["type"]
        if kind == "reset":
            before = self.holding()
            if content["replace_current"]:
                self.current = None
            self.buffer = []
            fresh = self.current and [i for i in content["items"]
                                      if i["item_id"] == self.current["item_id"]]
            if fresh:
                self.current = fresh[0]
            self.add(content["items"])
            now = self.holding()
            self.widget._on_msg(self.widget, {"type": "holding", "item_ids": now,
                                              "dropped": [i for i in before if i not in now]}, [])
        elif kind == "withdraw":
            gone = set(content["item_ids"])
            self.buffer = [i for i in self.buffer if i["item_id"] not in gone]
            if self.current and self.current["item_id"] in gone:
                self.current = self.buffer.pop(0) if self.buffer else None
            self.add(content.get("items"))
        elif kind in ("items", "ack"):
            self.add(content.get("items"))

    def holding(self) -> list[str]:
        return [i["item_id"] for i in ([self.current] if self.current else []) + self.buffer]

    def add(self, items):
        for item in items or []:
            if item["item_id"] not in self.done and item["item_id"] not in self.holding():
                self.buffer.append(item)
        if self.current is None and self.buffer:
            self.current = self.buffer.pop(0)

    # -- browser -> kernel ---------------------------------------------------------------------
    def __call__(self, type_: str, **content) -> dict | None:
        self.seq += 1
        n = len(self.sent)
        self.widget._on_msg(self.widget, {"type": type_, "seq": self.seq, **content}, [])
        replies = [m for m in self.sent[n:] if m.get("seq") == self.seq]
        return replies[-1] if replies else None

    def of_type(self, type_: str) -> list[dict]:
        return [m for m in self.sent if m["type"] == type_]

    def hello(self) -> list[str]:
        self("hello")
        return [i["item_id"] for i in self.of_type("reset")[-1]["items"]]

    def press(self, label: str, *, source: str = "human") -> dict:
        """A class key with the current item on screen: label it as shown, move on."""
        item = self.current
        assert item is not None, "nothing on screen"
        event_id = uuid.uuid4().hex
        self.done.add(item["item_id"])
        self.current = self.buffer.pop(0) if self.buffer else None
        self.shown_as[item["item_id"]] = item["strategy"]
        reply = self("label", item_id=item["item_id"], label=label, source=source,
                     query=item["strategy"], event_id=event_id)
        if reply["type"] == "ack":
            self.actions.append([event_id])
        return reply

    def undo(self) -> dict:
        event_ids = self.actions.pop()
        return self("undo", event_ids=event_ids)


@pytest.fixture
def browser(session):
    widget = LabelWidget(session, buffer_size=6, charts=False)
    yield Browser(widget)
    widget.close()


def events(session) -> list[tuple]:
    log = session.store.events()
    return [(a, i, None if lab is None or lab != lab else lab)
            for a, i, lab in zip(log["action"], log["item_id"], log["label"], strict=True)]


def test_hello_sends_a_buffer_of_rendered_items(browser, session):
    ids = browser.hello()
    assert ids == [q.item_id for q in session.peek(6)]
    item = browser.of_type("reset")[-1]["items"][0]
    assert item["render"]["kind"] == "image" and item["render"]["mime"] == "image/png"
    assert item["render"]["width"] == 8 and len(item["render"]["data"]) > 20
    assert item["strategy"] == "cold-start" and item["reason"]
    assert item["suggestion"] is None and item["confidence"] is None


def test_label_message_is_durable_before_the_ack(browser, session):
    ids = browser.hello()
    event_id = uuid.uuid4().hex
    reply = browser("label", item_id=ids[0], label="3", query="cold-start", event_id=event_id)
    assert reply["type"] == "ack" and reply["action"] == "label" and reply["item_id"] == ids[0]
    assert reply["event_ids"] == [event_id]
    assert events(session) == [("label", ids[0], "3")]
    stored = session.store.events().iloc[0]
    assert stored["event_id"] == event_id and stored["query"] == "cold-start"
    assert session.labels[ids[0]] == 3
    assert browser.widget.progress["n_labeled"] == 1


def test_enter_records_an_accepted_suggestion(browser, session):
    ids = browser.hello()
    browser("label", item_id=ids[0], label="4", source="suggestion")
    assert session.store.events()["source"].tolist() == ["suggestion"]


def test_a_role_the_item_was_not_shown_in_is_refused(browser, session):
    ids = browser.hello()
    reply = browser("label", item_id=ids[0], label="4", query="audit")
    assert reply["type"] == "error" and "served as 'cold-start', not as 'audit'" in reply["message"]
    assert events(session) == []


def test_top_up_never_resends_an_item_the_browser_holds(browser, session):
    held = browser.hello()
    # Fast typing: the browser labels everything it holds before the first ack arrives,
    # so every label message is processed while the others are still in flight.
    in_flight = list(held)
    for k, item_id in enumerate(in_flight):
        browser("label", item_id=item_id, label=str(k % 10))
    delivered = [i["item_id"] for m in browser.sent if m["type"] in ("items", "ack")
                 for i in m.get("items") or []]
    assert len(delivered) == len(set(delivered)), "an item was sent twice"
    assert not set(delivered) & set(held), "an item already held or in flight was resent"
    # The browser is back to a full buffer, of the next unlabeled items in queue order.
    assert len(delivered) == browser.widget.buffer_size
    assert delivered == [q.item_id for q in session.peek(6)]


def test_prefetch_goes_out_before_the_durable_write(browser, session, monkeypatch):
    ids = browser.hello()
    order = []
    real_label = session.label
    monkeypatch.setattr(session, "label", lambda *a, **k: (order.append("label"),
                                                           real_label(*a, **k))[1])
    browser.widget.send = lambda content, buffers=None: (order.append(content["type"]),
                                                         browser.sent.append(content))
    browser("label", item_id=ids[0], label="1")
    assert order[:3] == ["items", "label", "ack"]


def test_a_background_refresh_never_resends_an_item_whose_label_was_acknowledged(browser, session):
    """Finding 4: a refresh from another thread used to take items under the lock and send
    them after it, so an item acknowledged in between came back into the browser's buffer."""
    browser.hello()
    head = browser.current["item_id"]
    peeked, go_on = threading.Event(), threading.Event()
    real_peek = session.peek

    def slow_peek(k=1):  # the refresh takes its items, then is held up before sending
        items = real_peek(k)
        if threading.current_thread().name == "refresher":
            peeked.set()
            go_on.wait(5)
        return items

    session.peek = slow_peek
    refresher = threading.Thread(target=browser.widget.refresh,
                                 kwargs={"replace_current": False, "reason": "retrained"},
                                 name="refresher")
    refresher.start()
    assert peeked.wait(5)
    labeler = threading.Thread(target=browser.press, args=("1",))  # the user labels the head
    labeler.start()
    time.sleep(0.2)
    go_on.set()
    refresher.join(5)
    labeler.join(5)
    session.peek = real_peek
    ack = next(k for k, m in enumerate(browser.sent) if m["type"] == "ack" and m["item_id"] == head)
    later = [i["item_id"] for m in browser.sent[ack + 1:] for i in m.get("items") or []]
    assert head not in later, "an item was sent again after its label was acknowledged"
    assert head not in browser.holding()


def test_bad_label_gets_an_error_reply_and_writes_nothing(browser, session):
    ids = browser.hello()
    reply = browser("label", item_id=ids[0], label="eleven")
    assert reply["type"] == "error" and reply["seq"] == browser.seq
    assert reply["item_id"] == ids[0] and reply["action"] == "label"
    assert "'eleven'" in reply["message"] and "classes" in reply["message"]
    assert "eleven" in browser.widget.error
    assert events(session) == []
    browser("label", item_id=ids[0], label="2")  # the next good action clears the error
    assert browser.widget.error == ""


def test_unknown_item_and_unknown_message_get_error_replies(browser, session):
    browser.hello()
    reply = browser("label", item_id="no-such-item", label="1")
    assert reply["type"] == "error" and "no-such-item" in reply["message"]
    reply = browser("frobnicate")
    assert reply["type"] == "error" and "frobnicate" in reply["message"]
    assert events(session) == []


def test_undo_names_the_events_it_takes_back(browser, session):
    """Finding 5: the browser popped its own stack while the kernel retracted the
    annotator's latest event; now the undo carries the ids of exactly what it takes back."""
    browser.hello()
    first = browser.current["item_id"]
    browser.press("1")
    first_id = browser.actions[-1][0]
    second = browser.current["item_id"]
    browser("skip", item_id=second, query="cold-start", event_id=(skip_id := uuid.uuid4().hex))
    browser.actions.append([skip_id])
    other = LabelStore.open(session.store.path, annotator=session.annotator)  # another notebook
    elsewhere = other.append("149", "9")  # the same OS user, later than both
    reply = browser.undo()
    assert reply["action"] == "undo" and reply["event_ids"] == [skip_id]
    assert [i["item_id"] for i in reply["undone"]] == [second]
    assert reply["undone"][0]["strategy"] == "cold-start"  # shown again in its old role
    reply = browser.undo()
    assert [i["item_id"] for i in reply["undone"]] == [first]
    log = session.store.events().set_index("event_id")
    undone = log[log["action"] == "undo"]["target"].tolist()
    assert undone == [skip_id, first_id]  # ours, in order
    session.sync()
    assert elsewhere.event_id not in undone and session.labels == {"149": 9}
    reply = browser("undo", event_ids=[skip_id])  # already undone: an error, nothing written
    assert reply["type"] == "error" and "already undone" in reply["message"]
    assert browser("undo")["type"] == "error"  # an undo that names nothing is refused


def test_a_review_keeps_only_the_label_the_screen_named(browser, session):
    """Issue 17 item 10: Enter on a review item keeps the label the screen says it keeps.
    The confirm carries that label; if the item's label changed since it was shown (another
    notebook relabeled it), nothing is written and the screen gets the item's label now."""
    label_items = [q.item_id for q in session.peek(3)]
    session.label_many({i: 3 for i in label_items})
    session.focus(label_items, role="review")
    browser.hello()
    shown = browser.current
    assert shown["item_id"] == label_items[0] and shown["given"] == "3"
    LabelStore.open(session.store.path, annotator="teammate").append(label_items[0], "5")
    session.sync()
    before = len(session.store.events())
    reply = browser("confirm", item_id=label_items[0], label="3", query="review",
                    event_id=uuid.uuid4().hex)
    assert reply["type"] == "error"
    assert "'3'" in reply["message"] and "'5'" in reply["message"] and label_items[0] in reply["message"]
    assert len(session.store.events()) == before  # no confirm of a label nobody saw
    reset = browser.of_type("reset")[-1]
    assert reset["reason"] == "confirm refused"
    assert reset["items"][0]["item_id"] == label_items[0] and reset["items"][0]["given"] == "5"

    reply = browser("confirm", item_id=label_items[0], label="5", query="review",
                    event_id=uuid.uuid4().hex)
    assert reply["type"] == "ack"
    assert events(session)[-1] == ("confirm", label_items[0], "5")
    reply = browser("confirm", item_id=label_items[1], query="review", event_id=uuid.uuid4().hex)
    assert reply["type"] == "error" and "label=None" in reply["message"]


def test_relabel_of_an_earlier_item(browser, session):
    ids = browser.hello()
    browser("label", item_id=ids[0], label="1")
    browser("label", item_id=ids[1], label="2")
    browser("label", item_id=ids[0], label="7", query="cold-start")  # walked back with ←
    assert events(session)[-1] == ("relabel", ids[0], "7")
    assert session.labels[ids[0]] == 7 and session.role_of(ids[0]) == "cold-start"


def test_grid_page_is_one_action_and_one_undo(browser, session):
    browser.hello()
    page = browser("page", n=12)["page"]
    assert len(page) == 12
    ids = [i["item_id"] for i in page]
    minted = [uuid.uuid4().hex for _ in ids]
    labels = ([[ids[0], "5", "human", "cold-start", minted[0]]]
              + [[i, "3", "suggestion", "cold-start", e] for i, e in zip(ids[1:11], minted[1:11])])
    n_files = len(list(session.store.path.glob("*.parquet")))
    reply = browser("label_page", labels=labels, skips=[[ids[11], "cold-start", minted[11]]], n=12)
    assert reply["type"] == "ack" and reply["event_ids"] == minted and len(reply["page"]) == 12
    assert not {i["item_id"] for i in reply["page"]} & set(ids)
    assert len(list(session.store.path.glob("*.parquet"))) == n_files + 1  # one file: all or none
    assert events(session) == ([("label", ids[0], "5")] + [("label", i, "3") for i in ids[1:11]]
                               + [("skip", ids[11], None)])
    log = session.store.events()
    assert log["source"].tolist() == ["human"] + ["suggestion"] * 10 + ["human"]
    assert set(log["query"]) == {"cold-start"}
    # The single-item buffer was replaced too, since the page moved the queue on.
    assert browser.of_type("reset")[-1]["reason"] == "page"
    reply = browser("undo", event_ids=minted)  # z after a page: the whole page, one write
    assert sorted(i["item_id"] for i in reply["undone"]) == sorted(ids)
    assert len(list(session.store.path.glob("*.parquet"))) == n_files + 2
    assert session.labels == {} and session.store.skipped() == set()


def test_public_methods_match_the_keys(browser, session):
    widget = browser.widget
    head = session.next().item_id
    assert widget.current["item_id"] == head
    widget.label(4)
    assert session.labels[head] == 4
    assert browser.of_type("reset")[-1]["replace_current"] is True
    skipped = session.next().item_id
    widget.skip()
    assert widget.undo() == [skipped]
    second = session.next().item_id
    widget.label_page({second: 2}, skips=[])
    assert [a for a, _, _ in events(session)] == ["label", "skip", "undo", "label"]
    with pytest.raises(ValueError, match="not one of the classes"):
        widget.label("x")


def test_retrain_in_the_background_resends_a_ranked_buffer(browser, session):
    ids = browser.hello()
    for k, item_id in enumerate(ids):
        browser("label", item_id=item_id, label=str(k % 3))
    browser.widget.retrain()
    assert session.wait_for_training(timeout=60)
    deadline = time.monotonic() + 5
    while not any(m.get("reason") == "retrained" for m in browser.of_type("reset")):
        assert time.monotonic() < deadline, "no reset after retrain_finished"
        time.sleep(0.01)
    reset = [m for m in browser.of_type("reset") if m["reason"] == "retrained"][-1]
    assert reset["replace_current"] is False  # the item on screen stays
    assert all(i["suggestion"] is not None for i in reset["items"])
    assert {i["strategy"] for i in reset["items"]} <= {session.strategy_name, "audit"}
    assert reset["items"][0]["suggested_by"] == "round 1"
    state = browser.widget.model_state
    assert state["rounds"] == 1 and state["training"] is False and state["last_accuracy"] > 0
    reply = browser("suggest", item_id=reset["items"][0]["item_id"])
    suggestion = browser.of_type("suggestion")[-1]
    assert reply is None and suggestion["suggestion"] == reset["items"][0]["suggestion"]


def test_failed_retrain_shows_the_error_and_keeps_the_labels(browser, session):
    ids = browser.hello()
    browser("label", item_id=ids[0], label="1")  # one class only: training must fail
    browser("retrain")
    deadline = time.monotonic() + 30
    while not browser.widget.error:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert "retrain failed" in browser.widget.error and "2 classes" in browser.widget.error
    assert browser.widget.model_state["last_error"]
    assert session.labels == {ids[0]: 1}


def test_a_failing_subscriber_never_turns_a_durable_label_into_an_error(browser, session):
    """Finding 6: a raising subscriber used to make the reply an error, and the item came
    back on screen although its label was on disk."""
    ids = browser.hello()

    def broken(event):
        raise RuntimeError("a chart could not redraw")

    session.subscribe(broken)
    reply = browser("label", item_id=ids[0], label="1")
    assert reply["type"] == "ack" and events(session) == [("label", ids[0], "1")]
    assert browser.widget.error == ""


def test_an_item_labeled_in_another_session_is_withdrawn_from_the_browser(browser, session):
    """Finding 8: another notebook labels an item this browser holds: within a second it
    leaves the buffer and the browser is topped up with items nobody labeled."""
    held = browser.hello()
    other = LabelStore.open(session.store.path, annotator="teammate")
    other.append(held[2], "4")
    deadline = time.monotonic() + 3
    while not browser.of_type("withdraw"):
        assert time.monotonic() < deadline, "the other writer's label was not picked up"
        time.sleep(0.02)
    withdraw = browser.of_type("withdraw")[-1]
    assert withdraw["item_ids"] == [held[2]] and held[2] not in browser.holding()
    assert len(browser.holding()) == browser.widget.buffer_size
    assert session.labels == {held[2]: 4}


def test_texts_shown_tell_one_story(session, browser):
    """Finding 7: each number shown names the model it comes from, and a cold-start reason
    never claims there is no model next to a suggestion."""
    ids = browser.hello()
    for k, item_id in enumerate(ids):
        browser("label", item_id=item_id, label=str(k % 3))
    session.retrain()
    payload = browser.widget._payload_for(session.next().item_id, reason="x")
    assert payload["suggested_by"] == "round 1"
    cold = session.ranker.reason("cold-start", None, 0)
    assert "no model" not in cold and "before any model was trained" in cold
    item = next(q for q in session.peek(20) if q.strategy == session.strategy_name)
    assert "the round-1 model hesitates between" in item.reason
    assert item.reason.count("%") == 2


def test_retrain_every_is_bound_to_the_session(browser, session):
    browser.widget.retrain_every = 5
    assert session.retrain_every == 5
    browser.widget.retrain_every = 0
    assert session.retrain_every is None
    session.retrain_every = 7
    assert LabelWidget(session, charts=False).retrain_every == 7


def test_unrenderable_item_is_an_error_payload_that_can_be_skipped(browser, session, monkeypatch):
    ids = browser.hello()
    monkeypatch.setattr(session.pool, "render", lambda item_id: 1 / 0)
    payload = browser.widget._payload(session.next())
    assert payload["render"] == {"kind": "error", "reason": "ZeroDivisionError: division by zero"}
    assert browser("skip", item_id=ids[0])["type"] == "ack"


def test_text_is_sent_as_data_not_html(tmp_path):
    text = '<img src=x onerror="window.__pwned=1">'
    pool = Pool.from_texts([text, "plain", "more plain"], item_ids=["xss", "a", "b"],
                           classes=["ok", "spam"])
    session = Session(pool, store=tmp_path / "t.wbstore", classes=["ok", "spam"],
                      learner=LogisticRegression())
    widget = LabelWidget(session, charts=False)
    assert widget._payload_for("xss", reason="y")["render"] == {"kind": "text", "text": text}
    assert widget.class_keys == ["1", "2"]
    session.close()


def test_class_keys():
    assert class_keys([str(d) for d in range(10)]) == [str(d) for d in range(10)]
    assert class_keys([str(d) for d in range(10)], "position") == list("1234567890")
    names = [f"c{i}" for i in range(12)]
    assert class_keys(names) == list("1234567890") + ["", ""]
    with pytest.raises(ValueError, match="keys must be"):
        class_keys(names, "qwerty")


def test_front_end_files_and_scoped_css():
    static = _static_dir()
    js = LabelWidget._esm
    assert "export default" in js and "stopPropagation" in js
    for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML"):  # data goes in with textContent only
        assert bad not in js, bad
    css = (static / "label.css").read_text()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    selectors = [s.strip() for block in re.findall(r"([^{}]+)\{", css) for s in block.split(",")]
    assert selectors and all(s.startswith(".wb-label") for s in selectors), selectors


def test_the_label_module_is_its_parts_joined_in_order():
    """anywidget loads `_esm` as one module from a blob URL (relative imports do not work), so
    the Python side joins content.js and the parts of widgets/label/ in LABEL_PARTS' order."""
    static = _static_dir()
    js = label_module()
    assert js == LabelWidget._esm == label_module()  # the same text every time
    on_disk = sorted(p.relative_to(static).as_posix() for p in (static / "label").glob("*.js"))
    assert sorted(LABEL_PARTS) == on_disk and len(set(LABEL_PARTS)) == len(LABEL_PARTS)
    names = ("content.js", *LABEL_PARTS)
    assert re.findall(r"^// ---- (\S+) ----$", js, flags=re.M) == list(names)
    at = 0
    for name in names:  # each file whole, in order
        at = js.index((static / name).read_text(), at)
    assert LABEL_PARTS[-1] == "label/widget.js" and js.rstrip().endswith("export default { render };")
    assert js.count("export default") == 1
    assert not re.search(r"^\s*import\b", js, flags=re.M)  # a blob URL module has nothing to import from
    # One scope: no two parts may define the same top-level name.
    top = re.findall(r"^(?:async\s+)?(?:function\*?|const|let|var|class)\s+(\w+)", js, flags=re.M)
    assert len(top) == len(set(top)), sorted(n for n in set(top) if top.count(n) > 1)
    # The map in widgets/label/README.md lists the parts in the order they are joined.
    readme = (static / "label" / "README.md").read_text()
    listed = re.findall(r"^\| \d+ \| `(\w+\.js)` \|", readme, flags=re.M)
    assert ["label/" + f for f in listed] == list(LABEL_PARTS)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to parse the module")
def test_the_label_module_parses(tmp_path):
    module = tmp_path / "label.mjs"
    module.write_text(label_module())
    out = subprocess.run(["node", "--check", str(module)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def _view_model_id(widget) -> str:
    bundle = widget._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle  # (data, metadata) or data
    return data["application/vnd.jupyter.widget-view+json"]["model_id"]


def test_session_widget_and_display_with_charts(session):
    widget = session.widget(charts=False)
    assert isinstance(widget, LabelWidget)
    assert _view_model_id(widget) == widget.model_id
    with_charts = session.widget()
    try:
        box = _view_model_id(with_charts)
        assert box != with_charts.model_id  # a VBox of the widget and the dashboard
        assert with_charts.dashboard is with_charts.dashboard
    finally:
        with_charts.close()
        widget.close()


@pytest.mark.slow
def test_a_hundred_and_twenty_rounds_store_exactly_the_role_each_item_was_shown_in(tmp_path):
    """Finding 1: with audit slots, labeling through the widget's own message path while
    the model retrains in the background (re-ranking the queue under the browser's feet),
    every stored label carries the role its item had on screen; the audit labels are exactly
    the audit reserve items, and the queue never held an item twice."""
    data = load_digits()
    pool = Pool.from_arrays(data.images, data.target, name="digits")  # no test split: audit mode
    session = Session(pool, tmp_path / "s", learner=LogisticRegression(max_iter=200),
                      strategy="margin", batch_size=4, retrain_every=4, audit_every=5)
    widget = LabelWidget(session, buffer_size=4, charts=False)
    browser = Browser(widget)
    browser.hello()
    truth = {i: str(pool.true_label(i)) for i in pool.item_ids}
    while len(session.history) < 120:  # 200 took 27-39 s of the suite's 20 minutes
        if browser.current is None:
            time.sleep(0.005)
            continue
        reply = browser.press(truth[browser.current["item_id"]])
        assert reply["type"] == "ack", reply
        if len(session.labels) // 4 - len(session.history) > 2:  # at most two rounds behind
            session.wait_for_training(timeout=60)
    session.wait_for_training(timeout=60)
    # The last round may have started before the last key or two, which do not reach
    # retrain_every on their own: one more round sees every label the history counts.
    session.retrain()
    log = session.store.events()
    assert (log["action"] == "label").all() and log["item_id"].is_unique
    stored = dict(zip(log["item_id"], log["query"]))
    assert stored == browser.shown_as
    assert {"audit", "margin", "cold-start"} <= set(stored.values())
    reserve = set(pool.item_ids[session.ranker.reserve])
    audited = {i for i, q in stored.items() if q == "audit"}
    assert audited and audited <= reserve
    assert not {i for i, q in stored.items() if q == "margin"} & reserve
    last = session.history.iloc[-1]
    assert last["eval_on"] == f"random audit sample ({len(audited)} items)"
    assert last["n_labels"] == len(stored) - len(audited)
    widget.close()
    session.close()


def test_audit_membership_is_a_uniform_property_of_the_item():
    from workbench.learn.queue import audit_reserve

    ids = pd.Index([f"item-{i}" for i in range(20_000)])
    reserve = audit_reserve(ids, 10)
    assert 1800 < len(reserve) < 2200  # about a tenth
    assert np.array_equal(audit_reserve(ids[::-1], 10), (len(ids) - 1 - reserve))  # order-free
    assert set(ids[audit_reserve(ids[:5000], 10)]) == set(ids[reserve]) & set(ids[:5000])


def test_the_review_button_puts_the_suspects_first_or_says_why_not(tmp_path):
    pool = datasets.digits().subset(np.arange(200))
    session = Session(pool, tmp_path / "s", learner=logistic_regression(), watch=False,
                      audit_every=0)
    browser = Browser(LabelWidget(session, charts=False))
    browser.hello()
    browser("review")  # one label: nothing to judge it against
    deadline = time.monotonic() + 30
    while "review failed" not in browser.widget.error:
        assert time.monotonic() < deadline, browser.widget.error
        time.sleep(0.02)
    assert "needs at least 2 labels in each of at least 2 classes" in browser.widget.error
    truth = {i: int(pool.true_label(i)) for i in pool.item_ids}
    flipped = pool.item_ids[7]
    session.label_many({i: (t + 1) % 10 if i == flipped else t for i, t in truth.items()})
    browser("review")
    while not any(m.get("reason") == "focus" for m in browser.of_type("reset")):
        assert time.monotonic() < deadline + 30, browser.widget.error
        time.sleep(0.02)
    reset = [m for m in browser.of_type("reset") if m["reason"] == "focus"][-1]
    assert reset["replace_current"] is True and reset["items"][0]["strategy"] == "review"
    table = session.suspects()
    doubted = table[table["suggested"].astype(str) != table["given"].astype(str)]
    shown = [i["item_id"] for i in reset["items"]]
    assert shown == list(doubted["item_id"][:len(shown)]) and flipped in shown
    assert reset["items"][0]["given"] == str(session.label_of(shown[0]))
    assert browser.widget.error == ""
    session.close()


def test_code_in_this_kernel_moves_the_view_on_quietly(browser, session):
    """Issue 18 item 7: a label written by this session from another cell is not "labeled in
    another session"; a teammate's still is."""
    held = browser.hello()
    session.label(held[0], 4)  # the item on screen, labeled from code
    quiet = browser.of_type("withdraw")[-1]
    assert quiet["item_ids"] == [held[0]] and quiet["quiet"] is True
    assert browser.current["item_id"] != held[0]
    teammate = LabelStore.open(session.store.path, annotator="teammate")
    teammate.append(held[3], "5")
    session.sync()
    loud = browser.of_type("withdraw")[-1]
    assert loud["item_ids"] == [held[3]] and not loud.get("quiet")
    assert loud["reason"] == "labeled in another session"


def test_a_queue_opened_from_code_starts_at_once_and_the_status_names_it(browser, session):
    """Issue 18 items 4 and 5: `session.review()` (here: a focus in the role "review") while
    an item is on screen replaces it with the first review item; the progress the status line
    draws names each queue and what is left in it."""
    held = browser.hello()
    session.label_many({i: 3 for i in held[1:4]})
    on_screen = browser.current["item_id"]
    session.focus(held[1:4], role="review")
    reset = browser.of_type("reset")[-1]
    assert reset["reason"] == "focus" and reset["replace_current"] is True
    assert browser.current["item_id"] == held[1] != on_screen
    assert browser.current["strategy"] == "review"
    queues = browser.widget.progress["queues"]
    assert queues[0] == {"queue": "review", "left": 3}
    assert queues[-1]["queue"] == session.strategy_name
    browser("confirm", item_id=held[1], label="3", query="review", event_id=uuid.uuid4().hex)
    assert browser.widget.progress["queues"][0] == {"queue": "review", "left": 2}


def test_an_image_from_a_class_folder_is_shown_without_the_folder(tmp_path):
    """Issue 18 item 11: "1/224.png" on screen tells the labeler the answer; the screen shows
    "224.png" and the store keeps the full id."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for k in range(3):
            pixels = rng.integers(0, 255, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / label / f"{label[0]}{k}.png")
    pool = Pool.from_folder(tmp_path / "data")
    session = Session(pool, tmp_path / "s", learner=logistic_regression(), watch=False, audit_every=0)
    browser = Browser(LabelWidget(session, charts=False))
    browser.hello()
    shown = browser.current
    assert "/" in shown["item_id"] and shown["name"] == shown["item_id"].split("/")[-1]
    assert all(not item["name"].startswith(("cat", "dog")) for item in browser.buffer)
    browser.press("cat")
    assert shown["item_id"] in session.store.current_labels().index
    session.close()
