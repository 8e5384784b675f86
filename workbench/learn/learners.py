"""Learners by name, and where each learner lives.

Any scikit-learn classifier with `predict_proba` works unchanged (images are flattened
for it; see `workbench.learn.contract`, which also says what else a learner may take).
The workbench's own: `LightHead` (`workbench.learn.head`), the default, a light head on the
pool's representation; `TorchClassifier` (`workbench.learn.torch_classifier`), a small
PyTorch ensemble on the pool's own features; and logistic regression, the classical
baseline. `make_learner` picks one by the name the command line and benchmarks use.
"""

from __future__ import annotations

# `name as name`: a name re-exported, importable from here as before it had a module of its own
from workbench.learn.contract import accepts_unlabeled, features_for
from workbench.learn.contract import fit_takes as fit_takes
from workbench.learn.torch_classifier import TorchClassifier

__all__ = ["TorchClassifier", "accepts_unlabeled", "logistic_regression", "make_learner", "features_for"]


def logistic_regression(random_state: int = 0):
    """The classical baseline learner used by `--learner logreg`."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, random_state=random_state)


LEARNERS = ("head", "torch", "logreg", "finetune")


def make_learner(name: str = "head", random_state: int = 0, *, encoder=None):
    """A learner by name: "head" (the default, `LightHead` on the pool's representation),
    "torch" (`TorchClassifier` on the pool's own features), "logreg", or "finetune"
    (`workbench.learn.finetune.FineTune`: the last block of `encoder`, a pretrained image
    encoder, and a head)."""
    if name == "finetune":
        from workbench.learn.finetune import FineTune

        if getattr(encoder, "spec", None) is None or getattr(encoder, "module", None) is None:
            raise ValueError("learner='finetune' trains a pretrained image encoder's last block: pass "
                             "the encoder as representation= (a torch.nn.Module, 'timm:resnet18', "
                             "'torchvision:resnet18' or 'open_clip:ViT-B-32'); got "
                             f"representation={encoder!r}")
        return FineTune(encoder, random_state=random_state)
    if name == "head":
        from workbench.learn.head import LightHead

        return LightHead(random_state=random_state)
    if name == "torch":
        return TorchClassifier(random_state=random_state)
    if name == "logreg":
        return logistic_regression(random_state)
    raise ValueError(f"unknown learner {name!r}; expected one of {', '.join(LEARNERS)}")

