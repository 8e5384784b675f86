"""The ranked queue: which unlabeled item is most worth labeling, and why, in words.

A round's model is turned into a queue by the session's strategy (`workbench.learn.strategies`)
with audit items interleaved (`workbench.learn.queue`); before any model there is the cold
start, a diverse first pick. Every served item carries the reason it is shown, naming the
model whose numbers it quotes.
"""

from __future__ import annotations

import numpy as np

from workbench.data.tasks import BOXES, MULTI_LABEL, SPANS, LabelSet
from workbench.data.unique import unique_ints
from workbench.learn.learners import features_for
from workbench.learn.metrics import HEADLINE_HALF_WIDTH, accuracy_interval
from workbench.learn.queue import (
    AUDIT,
    COLD_START,
    RANDOM,
    QueueItem,
    audit_reserve,
    build_queue,
    diverse_positions,
)
from workbench.loop import box_rounds, span_rounds

COLD_START_READ = 5_000  # rows of a pool on disk read to spread the first items (k-means' sample)
# A round ranks at most this many unlabeled items, a seeded random sample of them (a new one
# each round); the others follow in a random order. Ranking costs about 1 us an item (margins,
# the top of them, a batch-aware spread): 17 s of a 10,000,000-item round went to ranking all
# of them. The most uncertain of 200,000 random items is in the top 0.0005% of the pool's
# uncertainty, and no one labels 200,000 items between two rounds. Pools up to this size are
# ranked whole, as before.
MAX_RANKED = 200_000
EARLY_AUDIT_EVERY = 4  # the audit pace, left to the default, until the accuracy is known +-10 points


class Ranker:
    """Ranks a round's model into a queue, and says why each item is shown."""

    max_ranked = MAX_RANKED

    def __init__(self, session, *, audit_paced: bool):
        self.session = session
        # Left to the default, audit labels come faster (every EARLY_AUDIT_EVERY-th item) until
        # they measure the accuracy within +-10 points: a figure on 5 audit labels says nothing.
        self.audit_paced = audit_paced
        self.reserve = audit_reserve(session.pool.item_ids, session.audit_every)  # serving order
        self.in_reserve = np.zeros(len(session.pool), dtype=bool)
        self.in_reserve[self.reserve] = True
        self.cold_start_waits = False  # the cold start is spread again once the representation is ready

    def rank(self, model, skipped: set[str], row: dict | None = None):
        """Rank what was unlabeled when the model was trained, not now: the ranking is then
        a function of the training round alone (and of its history `row`, default the last
        one, for the audit pace), and a reopened session, which retrains on the same labels,
        rebuilds the very same queue (batch-aware strategies such as diverse_margin would
        otherwise group the candidates differently)."""
        session = self.session
        strategy, inputs = session.strategy, session.inputs
        open_ = ~session.pool.item_ids.isin(model.labeled + list(skipped))
        candidates = np.flatnonzero(open_ & ~self.in_reserve)
        audit = self.reserve[open_[self.reserve]]
        rng = session.seed + max(model.round - 1, 0)  # round 0: a model started from
        candidates, rest = self.sample(candidates, rng)
        if len(candidates) == 0:  # every item is labeled, skipped or saved for the audit
            query_positions, scores = np.empty(0, dtype=np.int64), None
        elif getattr(strategy, "needs_samples", False):
            X = features_for(model.learner, inputs.features()[candidates])
            query = strategy(model.learner.predict_proba_samples(X), len(candidates), rng=rng)
            query_positions, scores = query.positions, query.scores
        elif getattr(strategy, "needs_features", False):
            # diversity is measured where the learner looks: the representation, if it uses one
            query = strategy(model.query_proba[candidates], len(candidates),
                             features=inputs.features()[candidates], batch=session.batch_size, rng=rng)
            query_positions, scores = query.positions, query.scores
        else:
            query = strategy(model.query_proba[candidates], len(candidates), rng=rng)
            query_positions, scores = query.positions, query.scores
        return build_queue(candidates[query_positions], scores, session.strategy_name,
                           audit=audit, audit_every=self.audit_pace(row), rest=rest)

    def sample(self, candidates: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """`(ranked, rest)`: at most `max_ranked` of the candidates, a seeded random sample in
        pool order, for the strategy to rank, and the others in a random order (None when
        all are ranked)."""
        if len(candidates) <= self.max_ranked:
            return candidates, None
        rng = np.random.default_rng([seed, len(candidates)])
        picked = np.zeros(len(candidates), dtype=bool)
        picked[rng.choice(len(candidates), self.max_ranked, replace=False)] = True
        rest = candidates[~picked]
        return candidates[picked], rest[rng.permutation(len(rest))]

    def audit_pace(self, row: dict | None = None) -> int | None:
        """Every how many items an audit item is served: `audit_every`, or, left to the
        default, EARLY_AUDIT_EVERY until the accuracy measured on the audit labels (in `row`,
        default the latest history row) is known within +-10 points."""
        audit_every = self.session.audit_every
        if not self.audit_paced or not audit_every:
            return audit_every
        history = self.session.rounds.rows
        row = row if row is not None else (history[-1] if history else None)
        if row is None:
            return EARLY_AUDIT_EVERY
        low, high = accuracy_interval(row["accuracy"], row["n_eval"])
        sure = not np.isnan(low) and (high - low) / 2 <= HEADLINE_HALF_WIDTH
        return audit_every if sure else EARLY_AUDIT_EVERY

    @property
    def diverse_start(self) -> bool:
        return self.session.strategy_name != "random" and self.session.task != BOXES

    def cold_start_queue(self):
        """No model yet: begin with a diverse batch (one item per k-means cluster), then
        random items, so the first labels cover the data instead of one corner of it. The
        clusters are those of the representation the learner will see once it is learned
        (on 28 x 28 images this lifts the first model from 81% to 92% accuracy at 20 labels),
        of the pool's own features until then. A random strategy starts at random: its
        point is an unbiased sample; so does a boxes session, whose images' pixels say where
        objects are, not what they are."""
        session = self.session
        free = np.flatnonzero(~self.in_reserve)
        order = np.random.default_rng(session.seed).permutation(free)
        ready = session.inputs.ready()
        # spread again once the representation is learned
        self.cold_start_waits = not ready and self.diverse_start
        if self.diverse_start:
            features = session.inputs.features() if ready else session.pool.X
            among = free
            if not isinstance(features, np.ndarray) and len(free) > COLD_START_READ:
                # Features left on disk (a Parquet dataset) are read by row group: a sample of
                # a few runs of neighbouring rows, from all over the pool, not every row.
                runs, run = 8, COLD_START_READ // 8
                starts = np.random.default_rng(session.seed).choice(len(free) - run, runs, replace=False)
                among = unique_ints(np.concatenate([free[s:s + run] for s in starts]))
            spread = max(session.batch_size, 2 * len(session.classes))
            first = among[diverse_positions(features[among], spread, seed=session.seed)]
            order = np.concatenate([first, order[~np.isin(order, first)]])
        return build_queue(order, None, COLD_START, audit=self.reserve, audit_every=self.audit_pace())

    def queue_item(self, position, role, score) -> QueueItem:
        """The served item: its id, role and score, the model's suggestion, and the reason."""
        session = self.session
        item_id = session.pool.item_ids[position]
        model = session.rounds.model
        suggestion, confidence = (None, None) if model is None else self.suggest(model, position)
        return QueueItem(item_id=item_id, position=int(position), strategy=role,
                         score=None if score is None else float(score), suggestion=suggestion,
                         confidence=confidence, reason=self.reason(role, score, position))

    def suggest(self, model, position: int) -> tuple:
        """The model's suggestion for the pool item at `position`, and how sure it is."""
        if self.session.task == SPANS:  # the tagger's spans for the text
            return model.predictor.spans_of(position)
        if self.session.task == BOXES:  # the detector's boxes for the image
            return model.predictor.boxes_of(position)
        return self.suggestion(model.proba[position])

    def suggestion(self, p) -> tuple:
        """The model's suggestion from an item's probabilities, and how sure it is: the top
        class and its probability; for a multi-label pool the set of classes at the learner's
        threshold or above (even odds by default: what its predict says), and the probability
        of its least sure decision."""
        session = self.session
        if session.task == MULTI_LABEL:
            threshold = getattr(session.learner, "threshold", 0.5)
            return (LabelSet(c for c, q in zip(session.classes, p) if q >= threshold),
                    float(self.confidence(p)))
        return session.classes[int(np.argmax(p))], float(self.confidence(p))

    def confidence(self, proba) -> np.ndarray:
        """How sure each row of probabilities is of its suggestion: the top class's
        probability; for sets, that of the least sure class decision."""
        proba = np.asarray(proba)
        if self.session.task == MULTI_LABEL:
            return np.maximum(proba, 1 - proba).min(axis=-1)
        return proba.max(axis=-1)

    def reason(self, role: str, score, position: int) -> str:
        """Why the item is shown, naming the model whose numbers it quotes: the suggestion
        comes from the final (possibly self-trained) model, the ranking from the model that
        knows only people's labels, so each number says which one it is."""
        session = self.session
        if role == COLD_START and not self.diverse_start:
            return "cold start: a random pick, made before any model was trained"
        if role == COLD_START:
            return "cold start: a diverse first pick, made before any model was trained"
        if role == AUDIT:
            return "audit: a random item, kept out of training to measure accuracy honestly"
        if role == RANDOM and score is None and session.strategy_name != "random":
            return (f"random pick: this round's {session.strategy_name} ranking covered a random "
                    f"{self.max_ranked:,} of the unlabeled items, and you are past them")
        model = session.rounds.model
        if model is None or score is None:
            return role
        p = model.query_proba[position]
        names = session.class_names
        who = "the model you started from" if model.round == 0 else f"the round-{model.round} model" + (
            ", trained on your labels alone," if model.self_trained else "")
        if session.task == MULTI_LABEL:
            return self.multi_label_reason(role, score, p, who)
        if session.task == SPANS:
            return span_rounds.reason(session, model, role, score, position, who)
        if session.task == BOXES:
            return box_rounds.reason(session, model, role, score, position, who)
        top = np.argsort(p)[::-1][:2]
        guess = f"{names[int(top[0])]} ({p[top[0]]:.0%}) and {names[int(top[1])]} ({p[top[1]]:.0%})"
        if role in ("margin", "diverse_margin"):
            return f"margin {-score:.2f}: {who} hesitates between {guess}"
        if role == "least_confidence":
            return f"least confidence: {who} gives its top guess only {p[top[0]]:.0%} ({guess})"
        if role == "entropy":
            return f"entropy {score:.2f} nats: {who} spreads its probability ({guess})"
        if role == "bald":
            return f"BALD {score:.3f}: dropout samples of {who} disagree ({guess})"
        if role == "random":
            return f"random pick ({who} says {guess})"
        return f"{role} score {score:.3g} ({who} says {guess})"

    def multi_label_reason(self, role: str, score: float, p, who: str) -> str:
        """Why a multi-label item is shown: the class decisions the model is least sure of."""
        names = self.session.class_names
        unsure = np.argsort(np.abs(np.asarray(p) - 0.5))[:2]
        doubt = " and ".join(f"{names[int(j)]} ({p[j]:.0%})" for j in unsure)
        if role in ("mean_uncertainty", "diverse_uncertainty"):
            return f"mean uncertainty {score:.2f} over the classes: {who} is least sure of {doubt}"
        if role == "max_uncertainty":
            return f"uncertainty {score:.2f}: {who} cannot decide {doubt}"
        if role == "random":
            return f"random pick ({who} is least sure of {doubt})"
        return f"{role}: {who} is least sure of {doubt}"


def check_strategy_fits(strategy, name: str, learner) -> None:
    """Refuse a strategy that needs what the learner cannot give (MC-dropout samples)."""
    if getattr(strategy, "needs_samples", False) and not hasattr(learner, "predict_proba_samples"):
        raise ValueError(f"strategy {name!r} needs a learner with MC-dropout samples "
                         f"(predict_proba_samples), e.g. TorchClassifier; got "
                         f"{type(learner).__name__}")
