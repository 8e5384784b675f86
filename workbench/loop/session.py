"""Session: the active-learning loop a person drives, one label at a time.

    session = Session(pool, store="labels.wbstore")
    item = session.next()                  # the item most worth labeling, and why
    session.label(item, 3)                 # durable in the store before it returns
    session.undo()                         # takes back exactly that label
    session.retrain()                      # fit, re-rank the queue, record history

Python owns all state; widgets only draw it and call these methods. The store is the
source of truth for labels: reopening it rebuilds the labels, the history and the model
the user last saw, so the queue resumes exactly where they stopped.

`Session` is a facade: each idea lives in a room of its own under `workbench.loop`, and the
session wires them together and forwards its public methods to them:

    item_state  what it knows of each item: label, role, skip        loop/item_state.py
    ranker      the ranked queue and why an item is shown            loop/ranking.py
    serving     what is shown next, queues opened on request, claims loop/serving.py
    actions     label, skip, label_many, undo, sync                  loop/acting.py
    rounds      training rounds, the model, the history              loop/rounds.py
    resume      the history and model kept in the store, restored    loop/resume.py
    reviewing   suspects, duplicates, review, accepted suggestions   loop/review.py
    team        blame, agreement, adjudication                       loop/team.py

Honest accuracy: the model is scored on data the strategy did not choose (loop/held_out.py).

On a cluster: `Session(pool, store, cluster=client)` (a `dask.distributed.Client`, or a
scheduler's address, or `WORKBENCH_DASK_SCHEDULER` in the environment; or "ray", or
"ray://host:port", for Ray) builds the pool's representation as a job over its parts on the
cluster's workers (`workbench.data.jobs`);
`fallback="in-process"` works here instead when the scheduler cannot be reached. The label
store stays where it is: labels never travel to the workers.
"""

from __future__ import annotations

import functools
import threading

from workbench.data.jobs import connect
from workbench.data.pool import Pool
from workbench.data.tasks import BOXES, MULTI_LABEL, PARTS, SPANS
from workbench.learn.head import LightHead
from workbench.learn.learners import make_learner
from workbench.learn.model import InputSignature
from workbench.learn.multilabel import MultiLabelHead, multi_label_learner
from workbench.learn.queue import overlap_items
from workbench.learn.strategies import get_strategy, strategy_name
from workbench.learn.token_tagger import TokenTagger
from workbench.loop import pool_source, views
from workbench.loop.acting import Actions
from workbench.loop.events import Events
from workbench.loop.held_out import held_out_split
from workbench.loop.inputs import LearnerInputs, resolve_representation
from workbench.loop.item_state import ItemState
from workbench.loop.ranking import Ranker, check_strategy_fits
from workbench.loop.resume import Resume
from workbench.loop.review import Reviewing
from workbench.loop.rounds import Rounds
from workbench.loop.serving import Serving
from workbench.loop.start_from import ClassStart, learner_after, open_start
from workbench.loop.start_parts import PartsStart, check_learner
from workbench.loop.team import Team, replace_open
from workbench.loop.watch import Watcher
from workbench.store import LabelStore
from workbench.store.claims import Claims
from workbench.store.views import labels_hash


def _forward(room: str, method):
    """A Session method that is `method` of the room `room` (its name, docstring and signature)."""
    @functools.wraps(method)
    def forwarded(self, *args, **kwargs):
        return getattr(getattr(self, room), method.__name__)(*args, **kwargs)
    return forwarded


class Session:
    """The active-learning loop a person drives (see this module's docstring for its rooms)."""

    def __init__(self, pool: Pool, store, *, learner=None, strategy=None, classes=None,
                 test: Pool | tuple | None = None, batch_size: int = 10, retrain_every: int | None = None,
                 audit_every: int | None = None, annotator: str | None = None, seed: int = 0,
                 resume: bool = True, watch: bool = True, at: str | None = None,
                 overlap: float = 0.0, representation="auto", representation_cache=None,
                 start_from=None, cluster=None, fallback: str | None = None):
        if not isinstance(pool, Pool):
            raise TypeError(f"pool must be a workbench.Pool, got {type(pool).__name__}")
        classes = list(classes) if classes is not None else pool.classes
        # A model trained elsewhere (a bundle, a registry name): round 0, see loop/start_from.py
        start, classes = open_start(start_from, pool, classes) if start_from is not None else (None, classes)
        # one kind of span, or of object, is a task
        if not classes or (len(classes) < 2 and pool.task not in PARTS):
            least = "one class" if pool.task in PARTS else "two classes"
            raise ValueError(
                f"a {pool.task!r} session needs at least {least}, got {classes!r}; pass "
                "classes=[...] when the pool has no ground truth"
            )
        self.pool = pool
        self.task = pool.task  # what one label is: a class, or a set of them (workbench.data.tasks)
        self.signature = InputSignature.of(pool)  # what the model reads (see learn/model.py)
        self.classes = classes
        self.class_names = [str(c) for c in classes]
        self.class_by_name = dict(zip(self.class_names, classes))
        # Bad input is refused before a store is made for it, or a cluster connected for it
        # (bad input stores nothing, and leaves no client behind)
        representation = resolve_representation(representation)
        if self.task == MULTI_LABEL:
            learner = multi_label_learner(learner, self.class_names)
        elif self.task == SPANS and learner is not None and not hasattr(learner, "fit_spans"):
            raise ValueError(f"a spans pool needs a learner that tags spans (fit_spans, predict_spans: "
                             f"e.g. TokenTagger), got {type(learner).__name__}")
        elif self.task == BOXES and learner is not None and not hasattr(learner, "fit_boxes"):
            raise ValueError(f"a boxes pool needs a learner that finds boxes (fit_boxes, predict_boxes, "
                             f"uncertainty: e.g. BoxDetector), got {type(learner).__name__}")
        elif isinstance(learner, str):  # by name; "finetune" trains the encoder given as representation=
            learner = make_learner(learner, seed, encoder=representation)
        # The default: a light head on the pool's representation, learned once in the
        # background and cached (see workbench.loop.inputs); other learners see pool.X.
        if start is not None:
            check_learner(start, learner)
        self.learner = (learner if learner is not None else self._default_learner(seed)
                        if start is None else learner_after(start, seed, self.class_names))
        # diverse_margin ranks one class per item; diverse_uncertainty each class's own decision
        strategy = strategy or {MULTI_LABEL: "diverse_uncertainty", SPANS: "mean_token_entropy",
                                BOXES: "box_entropy"}.get(self.task, "diverse_margin")
        self.strategy = get_strategy(strategy, self.task)
        self.strategy_name = strategy_name(strategy)
        check_strategy_fits(self.strategy, self.strategy_name, self.learner)
        # Jobs over the whole pool (its representation) run on a Dask cluster when given one
        # (a Client, a scheduler address, or WORKBENCH_DASK_SCHEDULER), or on Ray ("ray",
        # "ray://host:port"): workbench.data.jobs.
        # An unreachable scheduler is named before the store is touched.
        self.cluster = connect(cluster, fallback=fallback)
        self._owns_cluster = self.cluster is not None and self.cluster is not cluster
        try:
            self.store = (store if isinstance(store, LabelStore)
                          else LabelStore.open(store, annotator=annotator))
            self.annotator = annotator or self.store.annotator
            # `at`: train and evaluate on the labels of a commit, read-only (an old model rebuilt).
            self.at = None if at is None else self.store.rev(at).id
            self.store.bind(classes=self.class_names, n_items=len(pool), task=self.task,
                            items_hash=labels_hash(pool.item_ids, [""] * len(pool)))
            pool_source.record(self.store, pool)  # so the store alone can reopen it: Session.open
        except BaseException:
            if self._owns_cluster:  # a store that refuses this pool leaves no client open
                self.cluster.close()
            raise
        self.batch_size, self.retrain_every, self.seed = batch_size, retrain_every, seed
        self.test = held_out_split(test, pool)
        self.events = Events()  # before the representation job, which reports progress
        self.inputs = LearnerInputs(pool, self.learner, representation=representation,
                                    cache=representation_cache,
                                    on_progress=lambda state: self.emit("representation_progress"),
                                    encoder=getattr(start, "encoder", None),
                                    cluster=self.cluster,
                                    X_test=self.test[0] if self.test and self.task not in PARTS else None)
        self.audit_every = audit_every if audit_every is not None else (None if self.test else 10)
        self.overlap = overlap
        self.overlap_items = overlap_items(pool.item_ids, overlap)  # served to two annotators
        self.lock = threading.RLock()  # every room's state changes under it
        self.closed: str | None = None  # why this session no longer acts, once it does not
        if at is None:  # a read-only look at a commit leaves the session labeling open
            replace_open(self)
        self.claims = Claims(self.store.path, annotator=self.annotator)
        self.item_state = ItemState(self)
        self.ranker = Ranker(self, audit_paced=audit_every is None and self.test is None)
        self.serving = Serving(self)
        self.rounds = Rounds(self, start)
        self.resume = Resume(self)
        self.actions = Actions(self)
        self.reviewing = Reviewing(self)
        self.team = Team(self)
        self.subscribe(self.reviewing.rereview)  # an open review is re-ranked after a round
        self.store.sync()  # start counting other writers' events before reading the state
        self.item_state.load()
        if self.overlap_items and self.at is None:
            self.item_state.reannotate(self.overlap_items)
        if start is not None:  # before a restored round: it learns from this prior too
            self.rounds.prior = (PartsStart if self.task in PARTS else ClassStart)(start, self)
        if resume and self.at is None:
            self.resume.restore()
        if self.rounds.model is None:
            self.serving.queue = (self.rounds.start_queue() if start is not None
                                  else self.ranker.cold_start_queue())
        if self.resume.rebuild is not None:  # after the queue above, which the rebuilt model replaces
            self.rounds.trainer.first(self.resume.rebuild_round)
        self._watcher = Watcher(self.sync) if watch and self.at is None else None

    def _default_learner(self, seed: int):
        """A light head on the pool's representation: with label spreading for one class per
        item, one-vs-rest for a multi-label pool; a token tagger for spans, a light detector
        for boxes."""
        if self.task == MULTI_LABEL:
            return MultiLabelHead(classes=self.class_names, random_state=seed)
        if self.task == SPANS:
            return TokenTagger(labels=self.class_names, random_state=seed)
        if self.task == BOXES:
            from workbench.learn.box_detector import BoxDetector  # torch, only for a boxes session

            return BoxDetector(labels=self.class_names, random_state=seed)
        return LightHead(random_state=seed)

    @classmethod
    def open(cls, store, **options) -> Session:
        """Reopen a session from its store alone: the pool is read again from where the
        store records it came from (see `workbench.loop.pool_source`), the classes are the
        store's; `options` as for `Session(...)`."""
        pool = pool_source.rebuild(store, otherwise="open it with Session(pool, store) and the "
                                                    "pool it labels")
        options.setdefault("classes", pool_source.classes_for(store, pool))
        return cls(pool, store, **options)

    # -- reading state ------------------------------------------------------------------------
    labels = property(lambda self: self.item_state.current(), doc=ItemState.current.__doc__)
    label_of = _forward("item_state", ItemState.label_of)
    role_of = _forward("item_state", ItemState.role_of)
    served_as = _forward("item_state", ItemState.served_as)
    representation = _forward("inputs", LearnerInputs.representation)

    def is_done(self, item_id: str) -> bool:
        """Whether this session has nothing more to ask about the item: it is labeled or
        skipped (an overlap item: labeled by this annotator, or by two annotators already)."""
        with self.lock:
            return self.serving.is_done(item_id)

    @property
    def audit_positions(self):
        """Pool positions of the items that audit slots may serve (kept out of training)."""
        return self.ranker.reserve.copy()

    @property
    def model(self):
        """The latest trained model (`workbench.learn.model.Model`: `predict_proba(items)` on
        a pool, its features or raw items; `.learner` is the fitted estimator), or None before
        the first retrain."""
        model = self.rounds.model
        return None if model is None else model.predictor

    history = property(lambda self: self.rounds.history(), doc=Rounds.history.__doc__)
    suggested_by = property(lambda self: self.rounds.suggested_by(), doc=Rounds.suggested_by.__doc__)
    queues = property(lambda self: self.serving.queues, doc=Serving.queues.__doc__)
    pool_proba = _forward("rounds", Rounds.pool_proba)
    model_state = _forward("rounds", Rounds.model_state)
    progress = _forward("actions", Actions.progress)
    acted_here = _forward("actions", Actions.acted_here)

    # -- what is shown next (loop/serving.py) -------------------------------------------------
    peek = _forward("serving", Serving.peek)
    next = _forward("serving", Serving.next)
    release = _forward("serving", Serving.release)
    suggest = _forward("serving", Serving.suggest)
    focus = _forward("serving", Serving.focus)
    clear_queue = _forward("serving", Serving.clear_queue)

    # -- acting (loop/acting.py) --------------------------------------------------------------
    label = _forward("actions", Actions.label)
    skip = _forward("actions", Actions.skip)
    label_many = _forward("actions", Actions.label_many)
    undo = _forward("actions", Actions.undo)
    sync = _forward("actions", Actions.sync)

    # -- training (loop/rounds.py) ------------------------------------------------------------
    retrain = _forward("rounds", Rounds.retrain)
    wait_for_training = _forward("rounds", Rounds.wait_for_training)

    # -- cleaning and review (loop/review.py) -------------------------------------------------
    suspects = _forward("reviewing", Reviewing.suspects)
    duplicates = _forward("reviewing", Reviewing.duplicates)
    review = _forward("reviewing", Reviewing.review)
    confirm = _forward("reviewing", Reviewing.confirm)
    defer = _forward("reviewing", Reviewing.defer)
    accept_suggestions = _forward("reviewing", Reviewing.accept_suggestions)

    # -- the team (loop/team.py) --------------------------------------------------------------
    blame_text = _forward("team", Team.blame_text)
    adjudicate = _forward("team", Team.adjudicate)
    agreement = _forward("team", Team.agreement)

    # -- views, drawn by workbench.ui (loop/views.py) -----------------------------------------
    widget = views.method("widget", "The labeling widget (workbench.ui.label_widget.LabelWidget).")
    map = views.method("map", "A 2-D map of the items (an Altair chart with a brush), coloured by label, "
                       "prediction, uncertainty or suspicion; `queue_from(chart)` labels what you "
                       "select. See `workbench.ui.data_map`.")
    queue_from = views.method("queue_from", "Show next the items of a selection: the brushed region of "
                                     "`map()`'s chart, its selection value, or a list of item ids; "
                                     "returns their ids.")
    history_view = views.method("history_view", "The store's commit log and what each commit changed, with "
                                         "the items (a widget).")

    def export(self, path, *, name: str | None = None, as_zip: bool | None = None,
               overwrite: bool = False, embed_encoder: bool = False):
        """Write the model as a bundle (`workbench.learn.bundle`): a folder, or one zip file
        when `path` ends in ".zip" or `as_zip=True`, holding config.json, model.safetensors,
        model.onnx, a model card and a manifest. Retrains first if labels came since the last
        round, and names the label commit the model learned from (committing the labels if
        the head is not it). A pretrained encoder (`representation=`) is recorded by name and
        weights digest, or with `embed_encoder=True` (an image model) put inside model.onnx."""
        from workbench.loop.export import export_session

        return export_session(self, path, name=name, as_zip=as_zip, overwrite=overwrite,
                              embed_encoder=embed_encoder)

    def export_labels(self, path, *, format: str | None = None):
        """Write the current labels as a Hugging Face `datasets` Parquet file (one row per
        labeled item; the label a ClassLabel, a list of them for a multi-label pool, a list of
        {start, end, label} for spans, of {x, y, w, h, label} for boxes); for spans also
        CoNLL/IOB (".conll", format="conll") or a spaCy DocBin (".spacy", needs spaCy); for
        boxes also COCO (".json", format="coco") or YOLO (a folder, format="yolo"). See
        `workbench.loop.label_export`; returns the path."""
        from workbench.loop.label_export import export_labels

        return export_labels(self, path, format=format)

    # -- events and life ----------------------------------------------------------------------
    subscribe = _forward("events", Events.subscribe)
    emit = _forward("events", Events.emit)

    def close(self, *, reason: str = "closed", wait: bool = True) -> None:
        """Stop the watcher and the training thread (after its round, if `wait`) and drop our
        claims; the session takes no more actions (its labels stay in the store, of course)."""
        if self.closed is None:
            self.closed = reason
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        self.rounds.trainer.close(wait=wait)
        self.inputs.close()
        with self.lock:
            self.claims.close()
        if self._owns_cluster:  # a client this session opened from an address: not the user's
            self.cluster.close()
            self._owns_cluster = False

    def check_open(self, *, writing: bool = True) -> None:
        """Refuse an action on a closed session, or a write on a read-only one (`at=`)."""
        if self.closed is not None:
            raise RuntimeError(f"this Session is {self.closed}: it takes no more actions; "
                               "open a new Session on the store (the labels are all there)")
        if writing and self.at is not None:
            raise RuntimeError(f"this Session is read-only: it shows the labels as of commit "
                               f"{self.at[:7]}; open one without at= to label")

    def __repr__(self) -> str:
        p = self.progress()
        return (f"Session({self.pool.name!r}, {p['n_labeled']}/{p['pool_size']} labeled, "
                f"strategy={self.strategy_name}, learner={type(self.learner).__name__}, "
                f"store={str(self.store.path)!r})")
