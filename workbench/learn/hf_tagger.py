"""A Hugging Face token-classification model as a spans pool's learner, fine-tuned on the
labeled texts every round.

`HFTokenTagger("path/to/model")` (a folder written by `save_pretrained`, or a Hugging Face id
already in the local cache: nothing is ever downloaded) loads the model's fast tokenizer and
`AutoModelForTokenClassification` with a new classification head for the pool's BIO tags, and
fine-tunes the whole network with AdamW for a fixed number of epochs, seeded, on the GPU when
there is one. The spans contract counts words (`workbench.data.spans.tokens`); the model reads
subwords. The fast tokenizer's offset mapping joins the two: the first subword of a word
carries the word's tag in training (the others are left out of the loss, as Hugging Face's own
token-classification examples do), and a word's tag probabilities are its first subword's. So
spans still snap to whole words, and `token_proba` has one row per word as the default
`TokenTagger`'s has.

Reopening a session fits the same model again: each fit starts from the saved weights, the new
head is drawn from `random_state`, and batches come in a seeded order. A session bundle
(`Session.export`) holds the fine-tuned network, its tokenizer and its ONNX graph
(workbench.learn.hf_span_bundle); `save_pretrained` writes it as a Hugging Face folder too.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workbench.data.spans import bio_tags
from workbench.learn.token_tagger import TokenFeatures, WordTagger

__all__ = ["HFTokenTagger", "first_pieces"]


def first_pieces(offsets: Sequence[tuple[int, int]], words: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each word `(start, end)`: the index of the first subword whose `offsets` overlap
    it, or -1 when none does (the text was cut before it, or the tokenizer dropped it).
    Special tokens, whose offsets are empty, belong to no word. A subword across two words
    (a tokenizer that does not split where the workbench does) is the first of both."""
    pieces = [(j, s, e) for j, (s, e) in enumerate(offsets) if e > s]
    out = np.full(len(words), -1, dtype=np.int64)
    k = 0
    for i, (a, b) in enumerate(words):
        while k < len(pieces) and pieces[k][2] <= a:
            k += 1
        if k < len(pieces) and pieces[k][1] < b:
            out[i] = pieces[k][0]
    return out


class HFTokenTagger(WordTagger):
    """A Hugging Face token-classification model over the BIO tags of `labels`, fine-tuned on
    the labeled texts (see the module doc).

    model: a folder (`save_pretrained`'s) or a Hugging Face id in the local cache.
    labels: the span labels it tags; None: those of the spans it is fitted on.
    epochs, batch_size, learning_rate, weight_decay: the fine-tuning, AdamW with a learning
        rate decaying linearly to 0 over `epochs` passes over the labeled texts.
    max_length: subwords per text; None: the model's own limit (512 for BERT). A longer text
        is cut there, and its words after the cut are predicted "O" with probability 1 (so
        they make a text look no less sure).
    device: "auto" (the GPU when there is one, else the CPU), or a torch device name.
    random_state: the seed of the new head, dropout and the batches' order."""

    def __init__(self, model: str, labels: Sequence[str] | None = None, epochs: int = 5,
                 batch_size: int = 8, learning_rate: float = 5e-5, weight_decay: float = 0.01,
                 max_length: int | None = None, device: str = "auto", random_state: int = 0):
        self.model = model
        self.labels = labels
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_length = max_length
        self.device = device
        self.random_state = random_state

    # -- the model's files ------------------------------------------------------------------
    def folder(self) -> Path:
        """The model's folder: `model` itself, or its snapshot in the local Hugging Face cache.
        FileNotFoundError saying how to put it there when it is neither."""
        from workbench.data.pretrained_sources import hf_cache_dir, offline

        name = str(self.model)
        path = Path(name).expanduser()
        if path.is_dir():
            return path
        if path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
            raise FileNotFoundError(
                f"HFTokenTagger: there is no model folder {str(path)!r}; write one there with the model's "
                "and its tokenizer's save_pretrained(path), or name a Hugging Face id fetched once into the "
                "local cache (`huggingface-cli download NAME`); the workbench never downloads at run time")
        fetch = (f"fetch it once with `huggingface-cli download {name}` (or `hf download {name}`), or "
                 "give the folder its model and tokenizer were written to with save_pretrained; the "
                 "workbench never downloads at run time")
        try:
            from huggingface_hub import snapshot_download

            with offline():
                return Path(snapshot_download(name, cache_dir=hf_cache_dir(), local_files_only=True))
        except ImportError:
            raise ImportError("HFTokenTagger needs transformers: pip install transformers "
                              "(or the workbench[text] extra)") from None
        except Exception as e:  # not in the cache (LocalEntryNotFoundError, an invalid id, ...)
            raise FileNotFoundError(f"HFTokenTagger: the model {name!r} is not on this machine (looked "
                                    f"in {hf_cache_dir()}: {type(e).__name__}); {fetch}") from None

    def check(self) -> HFTokenTagger:
        """Load the tokenizer now, to learn at once (not at the first retrain) that the model
        is missing or its tokenizer is not a fast one."""
        self._tokenizer(self.folder())
        return self

    def _tokenizer(self, folder: Path):
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise ImportError("HFTokenTagger needs transformers: pip install transformers "
                              "(or the workbench[text] extra)") from None

        from workbench.data.pretrained_sources import offline

        with offline():
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True,
                                                      trust_remote_code=False)
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"HFTokenTagger needs a fast tokenizer (its offset mapping is how words "
                             f"map to subwords); {folder} has the slow {type(tokenizer).__name__}. "
                             "Save the model with a fast (tokenizers) one: tokenizer.json")
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:  # GPT-2 and kin: batches pad
            tokenizer.pad_token = tokenizer.eos_token
        # Padding on the right, whatever the tokenizer was saved with: on the left it shifts the
        # positions of a network with absolute ones (GPT-2), so a text's tags would depend on
        # the lengths of the texts batched with it (up to 0.79 in probability, seen in review)
        tokenizer.padding_side = "right"
        return tokenizer

    # -- fitting ----------------------------------------------------------------------------
    def tags(self, span_lists=()) -> list[str]:
        labels = self.labels if self.labels is not None else sorted(
            {str(s[2]) for spans in span_lists for s in spans})  # a Span, or (start, end, label)
        return ["O", *(f"{p}-{label}" for label in labels for p in ("B", "I"))]

    def fit_spans(self, features: TokenFeatures, positions, span_lists) -> HFTokenTagger:
        """Fine-tune on the texts at `positions` of `features`, marked with `span_lists`."""
        import torch

        from workbench.data.devices import torch_device
        from workbench.learn.torch_rng import _own_rng, _seed

        folder, span_lists = self.folder(), list(span_lists)
        self.tokenizer_ = self._tokenizer(folder)
        names = self.tags(span_lists)
        self.tag_names_ = names
        self._cache, self._lock = {}, threading.Lock()
        positions = [int(p) for p in positions]
        y = [[names.index(t) if t in names else 0 for t in bio_tags(features.texts[p], spans)[1]]
             for p, spans in zip(positions, span_lists)]
        present = np.unique(np.concatenate(y or [[]]).astype(np.int64))
        if len(present) < 2:  # nothing marked yet (or only marks): every word gets that tag
            self.constant_, self.model_ = int(present[0]) if len(present) else 0, None
            return self
        self.constant_ = None
        self.device_ = torch_device(self.device)
        self._seed = _seed(self.random_state)
        with _own_rng(self._seed, self.device_):  # the new head's weights and dropout, seeded
            self.model_ = self._pretrained(folder).to(self.device_)
            self.max_length_ = self._limit()
            encoded = [self._encode(features, p, tags) for p, tags in zip(positions, y)]
            self._train(encoded, torch)
        self.model_.eval()
        return self

    def _pretrained(self, folder: Path):
        from transformers import AutoModelForTokenClassification
        from transformers.utils import logging as hf_logging

        from workbench.data.pretrained_sources import offline

        names = self.tag_names_
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        # Every round loads the model with a new head on purpose: Hugging Face's warning that
        # the head's weights are new (train it), and its loading bar, would come every round.
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            with offline():
                return AutoModelForTokenClassification.from_pretrained(
                    str(folder), local_files_only=True, num_labels=len(names),
                    id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
                    ignore_mismatched_sizes=True)
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()

    def _limit(self) -> int:
        if self.max_length is not None:
            return int(self.max_length)
        limits = [n for n in (getattr(self.tokenizer_, "model_max_length", None),
                              getattr(self.model_.config, "max_position_embeddings", None))
                  if isinstance(n, int) and 0 < n < 1_000_000]  # an unset limit reads 1e30
        return min(limits, default=512)

    def _encode(self, features: TokenFeatures, position: int, tags=None) -> tuple[dict, np.ndarray, list]:
        """One text's model inputs (unpadded), the first subword of each of its words, and
        the subwords' tag indices for training (-100 where the loss ignores them)."""
        text = features.texts[position]
        enc = self.tokenizer_(text, truncation=True, max_length=self.max_length_, return_offsets_mapping=True)
        offsets = enc.pop("offset_mapping")
        first = first_pieces(offsets, features.tokens[position])
        targets = [-100] * len(enc["input_ids"])
        for word, piece in enumerate(first):
            if tags is not None and piece >= 0 and targets[piece] == -100:
                targets[piece] = tags[word]
        return dict(enc), first, targets

    def _batch(self, items: list[dict], targets: list[list] | None = None) -> dict:
        import torch

        batch = self.tokenizer_.pad(items, return_tensors="pt")
        if targets is not None:
            width, left = batch["input_ids"].shape[1], self.tokenizer_.padding_side == "left"
            pads = [[-100] * (width - len(t)) for t in targets]  # padding is left out of the loss too
            batch["labels"] = torch.tensor([p + t if left else t + p for p, t in zip(pads, targets)])
        return {k: v.to(self.device_) for k, v in batch.items()}

    def _train(self, encoded: list, torch) -> None:
        model, n = self.model_, len(encoded)
        size = max(1, int(self.batch_size))
        steps = max(1, int(self.epochs) * math.ceil(n / size))
        optimizer = torch.optim.AdamW(model.parameters(), lr=float(self.learning_rate),
                                      weight_decay=float(self.weight_decay))
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / steps))
        order = np.random.default_rng(self._seed)
        model.train()
        for _ in range(int(self.epochs)):
            ranked = order.permutation(n)
            for at in range(0, n, size):
                chosen = [encoded[i] for i in ranked[at:at + size]]
                loss = model(**self._batch([c[0] for c in chosen], [c[2] for c in chosen])).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()

    # -- predicting -------------------------------------------------------------------------
    def token_proba(self, features: TokenFeatures, positions) -> np.ndarray:
        """(words of those texts, tags): the probability of each tag for each word, its first
        subword's; a word the model never saw (past `max_length`, or dropped by the tokenizer)
        is "O" with probability 1."""
        positions = [int(p) for p in positions]
        blocks = self._word_proba(features, positions)
        out = np.concatenate(blocks) if blocks else np.zeros((0, len(self.tag_names_)))
        return out.reshape(-1, len(self.tag_names_))

    def _word_proba(self, features: TokenFeatures, positions: list[int]) -> list[np.ndarray]:
        n_tags = len(self.tag_names_)
        if self.model_ is None:
            blocks = []
            for p in positions:
                block = np.zeros((len(features.tokens[p]), n_tags))
                block[:, self.constant_] = 1.0
                blocks.append(block)
            return blocks
        # A round reads the same texts several times (its uncertainty, then each served text's
        # spans and least sure word): each text's forward pass is kept, per TokenFeatures. And a
        # text is always run in the same batch (`_batches`): a batch's padding and size change
        # the float sums by ~1e-7, which would make a text's probabilities depend on what was
        # asked before it.
        with self._lock:
            entry = self._cache.get(id(features))
            if entry is None:  # the TokenFeatures it holds keeps its id from being reused
                entry = self._cache[id(features)] = (features, self._batches(features), {})
            _, batches, known = entry
            for b in sorted({int(batches[0][p]) for p in positions if p not in known}):
                known.update(self._forward(features, batches[1][b]))
            return [known[p] for p in positions]

    def _batches(self, features: TokenFeatures) -> tuple[np.ndarray, list[list[int]]]:
        """The texts of `features` in batches of similar length (little padding): the batch of
        each text, and each batch's texts."""
        lengths = [len(ids) for ids in self.tokenizer_(features.texts, truncation=True,
                                                       max_length=self.max_length_)["input_ids"]]
        order = np.argsort(lengths, kind="stable")
        size = max(1, int(self.batch_size)) * 4  # no gradients kept: larger batches than training's
        members = [[int(p) for p in order[at:at + size]] for at in range(0, len(order), size)]
        of = np.empty(len(order), dtype=np.int64)
        of[order] = np.arange(len(order)) // size
        return of, members

    def _forward(self, features: TokenFeatures, positions: list[int]) -> dict[int, np.ndarray]:
        import torch

        encoded = [self._encode(features, p) for p in positions]
        left = self.tokenizer_.padding_side == "left"
        with torch.inference_mode():
            logits = self.model_(**self._batch([e[0] for e in encoded])).logits
        proba = torch.softmax(logits.float(), dim=-1).cpu().numpy().astype(np.float64)
        out = {}
        for row, p, (inputs, first, _) in zip(proba, positions, encoded):
            shift = proba.shape[1] - len(inputs["input_ids"]) if left else 0
            block = np.zeros((len(first), len(self.tag_names_)))
            block[first < 0, 0] = 1.0  # "O": tag_names_[0]
            block[first >= 0] = row[first[first >= 0] + shift]
            out[p] = block
        return out

    # -- saving -----------------------------------------------------------------------------
    def save_pretrained(self, path) -> Path:
        """Write the fine-tuned model (safetensors) and its tokenizer to the folder `path`, as
        Hugging Face's `save_pretrained` does: `HFTokenTagger(path)`, or any Hugging Face
        pipeline, loads it again (its config names the tags: id2label)."""
        if getattr(self, "model_", None) is None:
            raise ValueError("this HFTokenTagger has no fine-tuned model to save: fit_spans on texts "
                             "with at least one span first")
        path = Path(path)
        self.model_.save_pretrained(path)  # safetensors: the default (the only form in transformers 5)
        self.tokenizer_.save_pretrained(path)
        return path

    def __getstate__(self):  # a lock cannot be pickled or deep-copied; the cache is rebuilt on demand
        state = super().__getstate__()
        state.pop("_lock", None)
        if "_cache" in state:
            state["_cache"] = {}
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_cache" in state:
            self._lock = threading.Lock()

