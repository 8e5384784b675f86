"""Exporting a session's model, and starting a session from a bundle.

The bundle must say the truth about its training (the commit it names holds exactly the
labels it learned from; the figures are measured on data the strategy did not choose), and
a session started from it must begin where the bundle left off and keep learning from it.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import onnxruntime as ort
import pytest

from workbench import Session, datasets, load_model
from workbench.store.views import labels_hash


@pytest.fixture(scope="module")
def split():
    pool = datasets.digits()
    a, rest = pool.train_test_split(0.6, seed=1)
    b, test = rest.train_test_split(0.4, seed=1)
    return a, b, test


def labeled_session(pool, test, path, n, **kw):
    session = Session(pool, path, watch=False, test=(test.X, test.y), **kw)
    rng = np.random.default_rng(0)
    session.label_many({pool.item_ids[i]: pool.y[i] for i in rng.choice(len(pool), n, replace=False)})
    return session


@pytest.fixture(scope="module")
def exported(split, tmp_path_factory):
    a, _, test = split
    base = tmp_path_factory.mktemp("export")
    session = labeled_session(a, test, base / "store", 100)
    session.retrain()
    path = session.export(base / "digits-model")
    yield session, path
    session.close()


def test_the_bundle_reproduces_the_sessions_model_exactly(exported, split):
    session, path = exported
    pool = split[0]
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(pool.X), session.model.predict_proba(pool.X))
    np.testing.assert_array_equal(loaded.predict(pool), session.model.predict(pool))
    # and the suggestions the widget showed are those probabilities (to float32 rounding)
    np.testing.assert_allclose(session.pool_proba(np.arange(len(pool))), loaded.predict_proba(pool),
                               atol=1e-5)
    onnx = ort.InferenceSession(str(path / "model.onnx")).run(
        ["probabilities", "class_index"], {"items": pool.X})
    np.testing.assert_allclose(onnx[0], loaded.predict_proba(pool), atol=1e-4)
    assert (onnx[1] == loaded.predict_proba(pool).argmax(axis=1)).mean() > 0.999


def test_the_bundle_names_the_commit_of_exactly_the_labels_it_learned_from(exported):
    session, path = exported
    training = json.loads((path / "config.json").read_text())["training"]
    commit = session.store.rev(training["commit"])
    labels = session.store.labels(at=commit.id)
    assert commit.labels_hash == training["labels_hash"] == session.model.info["labels_hash"]
    assert labels_hash(labels.index, [str(v) for v in labels]) == training["labels_hash"]
    assert training["n_labels"] == 100 and training["eval_on"] == "held-out test split (432 items)"
    card = (path / "README.md").read_text()
    assert commit.id[:12] in card and training["labels_hash"] in card


def test_exporting_again_without_new_labels_reuses_the_commit(exported, tmp_path):
    session, path = exported
    before = len(session.store.log())
    again = session.export(tmp_path / "again")
    assert len(session.store.log()) == before
    assert (json.loads((again / "config.json").read_text())["training"]["commit"]
            == json.loads((path / "config.json").read_text())["training"]["commit"])


def test_a_model_older_than_the_labels_is_retrained_before_export(split, tmp_path):
    a, _, test = split
    session = labeled_session(a, test, tmp_path / "store", 40)
    session.retrain()
    extra = [i for i in a.item_ids if i not in session.labels][:5]
    session.label_many({i: a.true_label(i) for i in extra})
    path = session.export(tmp_path / "b")
    training = json.loads((path / "config.json").read_text())["training"]
    assert training["n_labels"] == 45 and training["round"] == 2
    assert session.store.rev("HEAD").labels_hash == training["labels_hash"]
    session.close()


def test_the_model_card_tells_what_a_user_must_know(exported):
    _, path = exported
    card = (path / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: workbench\npipeline_tag: image-classification")
    for needed in ("## What it reads", "## What it learned from", "| class | labels |",
                   "| annotator | labels |", "Accuracy:", "95% interval", "Macro-F1:",
                   "Confusion matrix", "## Training curve", "## Intended use and known limits",
                   "ort.InferenceSession(\"model.onnx\")", "held-out test split (432 items)"):
        assert needed in card, needed


def test_the_cards_five_lines_run_as_written(exported, split, tmp_path, monkeypatch):
    _, path = exported
    card = (path / "README.md").read_text()
    snippet = card.split("With onnxruntime and numpy alone")[1].split("```python\n")[1].split("```")[0]
    assert len(snippet.strip().splitlines()) == 5
    monkeypatch.chdir(path)
    printed = []
    scope = {"X": split[2].X[:20], "print": printed.append}
    exec(snippet, scope)
    assert printed[0] == [int(c) for c in load_model(path).predict(split[2].X[:20])]


# -- starting from a bundle ---------------------------------------------------------------------------
def test_a_session_started_from_a_bundle_suggests_and_ranks_from_the_first_item(exported, split, tmp_path):
    _, path = exported
    _, b, test = split
    session = Session(b, tmp_path / "b", watch=False, test=(test.X, test.y), start_from=path)
    first = session.next()
    assert first.suggestion is not None and first.strategy == "diverse_margin"
    assert "the model you started from hesitates between" in first.reason
    assert session.history["round"].tolist() == [0] and session.history["accuracy"].iloc[0] > 0.9
    state = session.model_state()
    assert state["started_from"] and state["rounds"] == 0 and state["last_accuracy"] > 0.9
    assert session.suggested_by == "the model you started from"
    np.testing.assert_allclose(session.pool_proba([b.position(first.item_id)]),
                               load_model(path).predict_proba(b.X[[b.position(first.item_id)]]),
                               atol=1e-5)
    session.close()


def test_training_continues_from_the_bundle_instead_of_starting_over(exported, split, tmp_path):
    _, path = exported
    _, b, test = split
    accuracy = {}
    for start in (path, None):
        session = Session(b, tmp_path / f"s{start is None}", watch=False, test=(test.X, test.y),
                          start_from=start)
        items = session.peek(10)
        session.label_many({i.item_id: b.true_label(i.item_id) for i in items})
        session.retrain()
        accuracy[start is None] = session.history["accuracy"].iloc[-1]
        assert session.history["round"].iloc[-1] == 1 and session.model_state()["rounds"] == 1
        assert not session.model_state()["started_from"]
        session.close()
    started, fresh = accuracy[False], accuracy[True]
    assert started > 0.93 and started > fresh + 0.1, accuracy


def test_a_pool_that_does_not_match_the_bundle_is_refused(exported, tmp_path):
    _, path = exported
    import workbench

    other = workbench.Pool.from_arrays(np.zeros((20, 28, 28)), np.arange(20) % 10)
    with pytest.raises(ValueError, match=r"shape \(28, 28\); the model to start from reads image "
                                         r"items with features of shape \(8 x 8\)"):
        Session(other, tmp_path / "s", watch=False, start_from=path)
    two = workbench.Pool.from_arrays(np.zeros((20, 8, 8)), np.arange(20) % 2)
    with pytest.raises(ValueError, match=r"classes \['0', '1'\] differ from the model's"):
        Session(two, tmp_path / "t", watch=False, start_from=path)


def test_an_unlabeled_pool_takes_the_bundles_classes(exported, split, tmp_path):
    _, path = exported
    import workbench

    unlabeled = workbench.Pool.from_arrays(split[1].X)
    session = Session(unlabeled, tmp_path / "s", watch=False, start_from=path)
    assert session.classes == list(range(10)) and session.next().suggestion is not None
    session.close()


def test_a_learner_without_a_prior_learns_the_bundles_confident_calls(split, tmp_path):
    from sklearn.linear_model import LogisticRegression

    a, b, test = split
    teacher = labeled_session(a, test, tmp_path / "a", 150, learner=LogisticRegression(max_iter=500))
    teacher.retrain()
    path = teacher.export(tmp_path / "logreg")
    teacher.close()
    accuracy = {}
    for start in (path, None):
        session = Session(b, tmp_path / f"s{start is None}", watch=False, test=(test.X, test.y),
                          start_from=start, learner=LogisticRegression(max_iter=500))
        session.label_many({i.item_id: b.true_label(i.item_id) for i in session.peek(10)})
        session.retrain()
        accuracy[start is None] = session.history["accuracy"].iloc[-1]
        session.close()
    assert accuracy[False] > accuracy[True] + 0.1, accuracy


def test_no_commit_is_claimed_when_the_store_holds_labels_the_model_did_not_learn(split, tmp_path):
    from workbench import LabelStore

    a, _, test = split
    store = LabelStore.open(tmp_path / "store")
    store.append("not-in-this-pool", "3")  # another pool's item, labeled in the same store
    session = labeled_session(a, test, tmp_path / "store", 40)
    path = session.export(tmp_path / "b")
    training = json.loads((path / "config.json").read_text())["training"]
    assert training["commit"] is None and training["labels_hash"] == session.model.info["labels_hash"]
    assert "No commit of the store" in (path / "README.md").read_text()
    again = session.export(tmp_path / "c")  # and again: no "nothing to commit" error
    assert json.loads((again / "config.json").read_text())["training"]["commit"] is None
    session.close()


def test_overwrite_replaces_a_bundle_and_nothing_else(exported, tmp_path):
    session, _ = exported
    (tmp_path / "project" / "data").mkdir(parents=True)
    (tmp_path / "project" / "data" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="exists and is not a model bundle; refusing to replace it"):
        session.export(tmp_path / "project", overwrite=True)
    assert (tmp_path / "project" / "data" / "notes.txt").read_text() == "keep me"
    first = session.export(tmp_path / "b")
    assert session.export(first, overwrite=True) == first


def test_a_bundle_remembers_the_bundle_its_model_started_from(exported, split, tmp_path):
    _, path = exported
    _, b, test = split
    session = Session(b, tmp_path / "s", watch=False, test=(test.X, test.y), start_from=path)
    session.label_many({i.item_id: b.true_label(i.item_id) for i in session.peek(10)})
    child = session.export(tmp_path / "child")
    session.close()
    parent = json.loads((path / "config.json").read_text())["training"]
    training = json.loads((child / "config.json").read_text())["training"]
    assert training["started_from"]["bundle"] == str(path)
    assert training["started_from"]["commit"] == parent["commit"]
    assert f"Started from the model `{path}`" in (child / "README.md").read_text()
    with pytest.warns(UserWarning, match="trained starting from the bundle"):
        Session(b, tmp_path / "s", watch=False, test=(test.X, test.y)).close()


def test_any_learner_can_start_from_the_default_bundle(exported, split, tmp_path):
    from sklearn.linear_model import LogisticRegression

    _, path = exported
    _, b, test = split
    session = Session(b, tmp_path / "s", watch=False, test=(test.X, test.y), start_from=path,
                      learner=LogisticRegression(max_iter=500))
    assert session.next().suggestion is not None and session.history["accuracy"].iloc[0] > 0.9
    session.label_many({i.item_id: b.true_label(i.item_id) for i in session.peek(10)})
    session.retrain()
    assert session.history["accuracy"].iloc[-1] > 0.85
    session.close()


def test_the_card_shows_names_from_the_data_as_text_never_as_markup(tmp_path):
    import re

    import workbench

    rng = np.random.default_rng(0)
    names = np.array(["<img src=x onerror=alert(1)>", "*plain* `tick`"])
    X = rng.normal(size=(80, 4)) + np.repeat([[0.0], [3.0]], 40, axis=0)
    pool = workbench.Pool.from_arrays(X, names[np.repeat([0, 1], 40)])
    session = Session(pool, tmp_path / "s", watch=False, annotator="<b>ana</b>")
    session.label_many({i: pool.true_label(i) for i in pool.item_ids[::4]})
    card = (session.export(tmp_path / "b") / "README.md").read_text()
    session.close()
    outside_code = re.sub(r"(`+).*?\1", "", card)
    assert "<img" not in outside_code and "<b>" not in outside_code
    assert "| &lt;img src=x onerror=alert\\(1\\)&gt; |" in card and "| &lt;b&gt;ana&lt;/b&gt; |" in card
    assert "`` *plain* `tick` ``" in card


def test_a_text_bundle_carries_the_pools_own_vectoriser(tmp_path, monkeypatch):
    import workbench
    from workbench.data import text

    monkeypatch.setenv("WORKBENCH_TEXT_MODEL", "tfidf")
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))  # fitted here, not cached
    words = {"sport": "goal match team score league", "food": "bread soup cheese bake taste",
             "weather": "rain wind storm cloud sunny"}
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for n in range(90):
        topic = list(words)[n % 3]
        texts.append(" ".join(rng.choice(words[topic].split(), 4)) + f" item {n}")
        labels.append(topic)
    pool = workbench.Pool.from_texts(texts, labels)
    session = Session(pool, tmp_path / "s", watch=False)
    session.label_many({i: pool.true_label(i) for i in pool.item_ids[::2]})

    def no_refit(*args, **kw):
        raise AssertionError("the vectoriser was fitted again")

    monkeypatch.setattr(text.TextVectorizer, "fit_transform", no_refit)
    path = session.export(tmp_path / "b")
    loaded = load_model(path)
    assert json.loads((path / "config.json").read_text())["input"]["raw_texts"]
    np.testing.assert_array_equal(loaded.predict(texts), session.model.predict(pool))
    np.testing.assert_allclose(loaded.predict_proba(texts), session.model.predict_proba(pool), atol=1e-6)
    session.close()


@pytest.mark.parametrize("name", ["x.zip", "x.ZIP"])
def test_a_path_ending_in_zip_gets_a_zip_file_that_loads(exported, split, tmp_path, name):
    session, _ = exported
    path = session.export(tmp_path / name)
    assert path == tmp_path / name and path.is_file() and zipfile.is_zipfile(path)
    with zipfile.ZipFile(path) as z:
        assert "manifest.json" in z.namelist()
    np.testing.assert_array_equal(load_model(path).predict_proba(split[0].X),
                                  session.model.predict_proba(split[0].X))
    assert json.loads(zipfile.ZipFile(path).read("config.json"))["training"]["commit"]
    folder = session.export(tmp_path / "folder", as_zip=False)  # other names: a folder still
    assert folder.is_dir() and (folder / "manifest.json").is_file()


def test_as_zip_false_with_a_zip_path_is_refused_naming_the_path(exported, tmp_path):
    from workbench.loop.export import bundle_as_zip

    with pytest.raises(ValueError, match=r"'[^']*x\.Zip' ends in '\.Zip' but as_zip=False"):
        bundle_as_zip(tmp_path / "x.Zip", False)
    assert bundle_as_zip("x.zip", None) and bundle_as_zip("x", True) and not bundle_as_zip("x", None)
    session, _ = exported
    with pytest.raises(ValueError, match="x.zip' ends in '.zip' but as_zip=False"):
        session.export(tmp_path / "x.zip", as_zip=False)
    assert not (tmp_path / "x.zip").exists()
    assert zipfile.is_zipfile(session.export(tmp_path / "x.zip"))
