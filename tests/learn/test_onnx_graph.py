import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from workbench import LightHead, Session, TorchClassifier, datasets
from workbench.data.representation import PatchEncoder, UnitEncoder, VectorEncoder
from workbench.learn.model import InputSignature, Model
from workbench.learn.onnx_graph import OPSET, to_onnx

SMALL_TORCH = dict(min_steps=20, max_epochs=5, n_members=2, hidden=16)


@pytest.fixture(scope="module")
def digits():
    return datasets.digits()


def session_model(pool, folder, learner=None, n_labels=40):
    """The model a session trains on its first `n_labels` labels (the default learner when
    `learner` is None)."""
    s = Session(pool, folder / "store", watch=False, learner=learner, representation_cache=False)
    for item in s.peek(n_labels):
        s.label(item.item_id, pool.true_label(item.item_id))
    s.retrain()
    return s.model


def encoded_model(encoder, X, y, learner=None, kind="image"):
    """A Model built as a session would: the encoder fitted on all items, the learner on
    their representation."""
    features = encoder.fit_transform(X, lambda *args: None)
    learner = (learner or LightHead()).fit(features, y)
    return Model(learner, learner.classes_, InputSignature(kind=kind, shape=X.shape[1:]), encoder=encoder)


def upsampled(images, size):
    """Digits blown up to `size` (smooth, real strokes) as a stand-in for larger images."""
    x = torch.from_numpy(np.ascontiguousarray(images[:, None]))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()


def dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def graph_predictions(model, X):
    graph = ort.InferenceSession(to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return graph.run(None, {"items": np.asarray(X, dtype=np.float32)})


def assert_same_predictions(model, X, atol=1e-5, tied_votes=False):
    """The graph's probabilities within `atol` of model.predict_proba, the same argmax.
    `tied_votes`: classes with exactly equal votes (7 of 20 trees each) may come out in
    either order from float32 sums; the graph's choice must then be one of the tied."""
    proba, class_index = graph_predictions(model, X)
    expected = model.predict_proba(X)
    assert proba.dtype == np.float32 and proba.shape == expected.shape
    assert class_index.dtype == np.int64 and class_index.shape == (len(X),)
    assert np.abs(proba - expected).max() <= atol
    if tied_votes:
        chosen = expected[np.arange(len(X)), class_index]
        assert (chosen >= expected.max(axis=1) - atol).all()
    else:
        np.testing.assert_array_equal(class_index, expected.argmax(axis=1))


def test_graph_has_one_input_two_outputs_and_checks(digits):
    X = digits.X.reshape(len(digits), -1)
    model = Model(LogisticRegression(max_iter=500).fit(X[:300], digits.y[:300]), digits.classes,
                  InputSignature.of(digits))
    graph = to_onnx(model)
    onnx.checker.check_model(graph, full_check=True)
    (items,), outputs = graph.graph.input, graph.graph.output
    assert items.name == "items" and dims(items) == ["N", 8, 8]
    assert items.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [o.name for o in outputs] == ["probabilities", "class_index"]
    assert dims(outputs[0]) == ["N", 10] and dims(outputs[1]) == ["N"]
    assert {o.domain or "ai.onnx": o.version for o in graph.opset_import} == {"ai.onnx": OPSET}
    props = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(props["classes"]) == [str(c) for c in digits.classes]
    proba, class_index = graph_predictions(model, digits.X[:0])  # an empty batch is a batch
    assert proba.shape == (0, 10) and class_index.shape == (0,)


def test_default_session_model_on_digits_matches_python(digits, tmp_path):
    model = session_model(digits, tmp_path)
    assert isinstance(model.learner, LightHead) and isinstance(model.encoder, PatchEncoder)
    assert_same_predictions(model, digits.X)
    assert_same_predictions(model, digits.X[:1])
    assert_same_predictions(model, digits.X[-257:])


def test_patch_encoder_with_overlapping_quadrants_matches_python(digits):
    # 28 x 28 with 6 x 6 patches: 23 x 23 response maps, whose quadrants share a row and column
    X = upsampled(digits.X[:200], (28, 28))
    model = encoded_model(PatchEncoder(n_atoms=32), X, digits.y[:200])
    assert model.encoder.patch == 6
    assert_same_predictions(model, X)


def test_patch_encoder_downscales_large_colour_images_like_python(digits):
    # 40 x 36 -> 32 x 29 by area interpolation: uneven, overlapping pooling windows
    grey = upsampled(digits.X[:200], (40, 36))
    rng = np.random.default_rng(0)
    X = np.stack([grey, grey[:, ::-1], 0.5 * grey], axis=-1) + rng.uniform(0, 0.1, (200, 40, 36, 3))
    model = encoded_model(PatchEncoder(n_atoms=32), X.astype(np.float32), digits.y[:200])
    assert_same_predictions(model, X)


@pytest.mark.parametrize("learner", [LightHead(), LogisticRegression(max_iter=1000)],
                         ids=["light-head", "logistic-regression"])
def test_two_class_models_match_python(digits, learner):
    two = np.isin(digits.y, [3, 8])
    X, y = digits.X[two], digits.y[two]
    model = encoded_model(VectorEncoder(), X, y, learner=learner)
    assert len(model.classes) == 2
    assert_same_predictions(model, X)


def test_classes_the_learner_never_saw_get_zero_columns(digits):
    names = np.array(["zero", "one", "two"])
    three = digits.y < 3
    X, y = digits.X[three], names[digits.y[three]]
    classes = ["four", "two", "zero", "three", "one"]
    learner = LightHead().fit(UnitEncoder().transform(X), y)
    model = Model(learner, classes, InputSignature.of(digits), encoder=UnitEncoder())
    assert_same_predictions(model, X)
    proba, _ = graph_predictions(model, X)
    assert not proba[:, [0, 3]].any()
    assert (np.asarray(classes)[proba.argmax(axis=1)] == y).mean() > 0.9


@pytest.mark.parametrize("encoder, dims", [(VectorEncoder(dims=16), 200), (VectorEncoder(), 64),
                                           (UnitEncoder(), 64)],
                         ids=["standardised-projected", "standardised", "normalised"])
def test_vector_and_text_encoders_match_python(digits, encoder, dims):
    # 200-d vectors: the pixels and a fixed random mix of them, so PCA has work to do
    flat = digits.X.reshape(len(digits), -1)[:400]
    mix = np.random.default_rng(1).normal(size=(64, dims - 64)).astype(np.float32)
    X = np.hstack([flat, flat @ mix]) if dims > 64 else flat
    model = encoded_model(encoder, X, digits.y[:400], kind="vector")
    assert_same_predictions(model, X)


def test_logistic_regression_on_flattened_pixels_matches_python(digits, tmp_path):
    model = session_model(digits, tmp_path, LogisticRegression(max_iter=2000))
    assert model.encoder is None
    assert_same_predictions(model, digits.X)


def test_torch_cnn_session_model_matches_python(digits, tmp_path):
    model = session_model(digits, tmp_path, TorchClassifier(**SMALL_TORCH))
    assert_same_predictions(model, digits.X[:257])


@pytest.mark.parametrize("shape", [(10, 10), (9, 11, 3)], ids=["10x10", "9x11-colour"])
def test_torch_cnn_with_uneven_pooling_matches_python(shape, digits):
    # after the max-pool 5 x 5 (and 4 x 5): the final 2 x 2 pooling windows overlap
    X = upsampled(digits.X[:120], shape[:2])
    if len(shape) == 3:
        X = np.stack([X, 1 - X, X * X], axis=-1)
    learner = TorchClassifier(**SMALL_TORCH).fit(X, digits.y[:120])
    model = Model(learner, digits.classes, InputSignature(kind="image", shape=shape))
    assert_same_predictions(model, X)


def test_torch_mlp_on_vectors_matches_python(digits):
    X = digits.X.reshape(len(digits), -1)[:300]
    learner = TorchClassifier(**SMALL_TORCH).fit(X, digits.y[:300])
    model = Model(learner, digits.classes, InputSignature(kind="vector", shape=(64,)))
    assert_same_predictions(model, X)


@pytest.mark.parametrize("learner, tied_votes", [
    (RandomForestClassifier(n_estimators=20, random_state=0), True), (KNeighborsClassifier(5), False)],
    ids=["random-forest", "k-neighbours"])
def test_other_sklearn_classifiers_are_converted_by_skl2onnx(digits, learner, tied_votes):
    flat = digits.X.reshape(len(digits), -1)
    learner.fit(flat[:300], digits.y[:300])
    model = Model(learner, digits.classes, InputSignature.of(digits))
    # The same leaves and neighbours, so the same probabilities; only exact ties differ.
    assert_same_predictions(model, digits.X, tied_votes=tied_votes)


class Memoriser(ClassifierMixin, BaseEstimator):
    """A classifier skl2onnx has never heard of."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def test_a_learner_skl2onnx_cannot_convert_is_refused_with_its_reason(digits):
    learner = Memoriser().fit(digits.X.reshape(len(digits), -1), digits.y)
    model = Model(learner, digits.classes, InputSignature.of(digits))
    with pytest.raises(ValueError, match=r"cannot export a Memoriser to ONNX: .*Memoriser"):
        to_onnx(model)


def test_a_torch_classifier_with_a_user_module_is_refused(digits):
    def module(shape, n_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), n_classes))

    learner = TorchClassifier(module=module, **SMALL_TORCH).fit(digits.X[:60], digits.y[:60])
    model = Model(learner, digits.classes, InputSignature.of(digits))
    with pytest.raises(ValueError, match="TorchClassifier with a user module="):
        to_onnx(model)
