"""A small named-entity data set built on the spot, offline: sentences from templates with
people, organisations and places filled in, each span's offsets known exactly.

Names are drawn from two disjoint halves of each list: the pool's texts use one half, the test
texts the other, so span F1 on the test texts measures whether a model learned what an entity
looks like in context, not a list of names. Some sentences carry no entity at all, and a few
names contain characters outside the Basic Multilingual Plane's letters (an emoji nearby) so
that offsets are counted in code points from the first text on.
"""

from __future__ import annotations

import numpy as np

PEOPLE = ["Alice Moreau", "Bob Okafor", "Carla Mendes", "Dmitri Volkov", "Erin Walsh", "Farah Haddad",
          "Gustav Lind", "Hana Sato", "Ivan Petrov", "Julia Costa", "Kofi Mensah", "Lena Berg",
          "Marco Rossi", "Nadia Karim", "Oscar Diaz", "Priya Nair", "Quentin Blake", "Rosa Lopez",
          "Samir Aziz", "Tara Singh", "Umar Farouk", "Vera Novak", "Wei Chen", "Yusuf Demir"]
ORGS = ["Acme Corp", "Northwind Bank", "Globex", "Initech", "Umbrella Health", "Stark Industries",
        "Wayne Foods", "Cyberdyne Systems", "Hooli", "Vandelay Imports", "Soylent Group", "Tyrell Labs",
        "Oceanic Air", "Blue Sun", "Aperture Science", "Black Mesa", "Massive Dynamic", "Gringotts",
        "Monarch Motors", "Pied Piper"]
PLACES = ["Paris", "Lagos", "Lisbon", "Kyiv", "Dublin", "Beirut", "Oslo", "Osaka", "Tallinn", "Porto",
          "Accra", "Bergen", "Milan", "Cairo", "Madrid", "Chennai", "Leeds", "Seville", "Tunis", "Delhi"]
TEMPLATES = [
    "{PER} joined {ORG} in {LOC} last year.",
    "Shares of {ORG} fell after {PER} resigned.",
    "{PER} said the talks in {LOC} went well.",
    "The new office of {ORG} opens in {LOC} next month.",
    "In {LOC}, {PER} met the board of {ORG}.",
    "{ORG} hired {PER} to run its {LOC} branch.",
    "Fans cheered as {PER} arrived in {LOC} 🎉 on Friday.",
    "A spokesperson for {ORG} declined to comment.",
    "Prices rose again this quarter, analysts said.",
    "{PER} and {PER} will speak at the {LOC} summit.",
    "According to {PER}, {ORG} will double its staff.",
    "The weather in {LOC} delayed flights for hours.",
    "Nobody expected the vote to pass so quickly.",
    "{ORG} and {ORG} agreed to merge by {LOC} time.",
]
LABELS = ["LOC", "ORG", "PER"]
_SLOTS = {"PER": PEOPLE, "ORG": ORGS, "LOC": PLACES}


def entity_texts(n: int, *, seed: int = 0, half: int = 0) -> tuple[list[str], list[list[tuple]]]:
    """`n` texts of one to three sentences and their spans `(start, end, label)`. `half`
    (0 or 1) picks which half of each name list fills them (the pool one, the test the other)."""
    rng = np.random.default_rng([seed, half])
    names = {k: v[half::2] for k, v in _SLOTS.items()}
    texts, spans = [], []
    for _ in range(n):
        text, marks = "", []
        for _ in range(int(rng.integers(1, 4))):
            template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
            if text:
                text += " "
            rest = template
            while "{" in rest:
                before, _, after = rest.partition("{")
                label, _, rest = after.partition("}")
                text += before
                name = names[label][int(rng.integers(len(names[label])))]
                marks.append((len(text), len(text) + len(name), label))
                text += name
            text += rest
        texts.append(text)
        spans.append(marks)
    return texts, spans


def entities(n: int = 400, *, n_test: int = 200, seed: int = 0):
    """A spans Pool of `n` texts (ground truth included) and a test Pool of `n_test` texts
    whose names the pool never uses. Item ids are "text-0000", ...; test ids "test-0000", ..."""
    from workbench.data.pool import Pool

    texts, spans = entity_texts(n, seed=seed, half=0)
    test_texts, test_spans = entity_texts(n_test, seed=seed, half=1)
    pool = Pool.from_texts(texts, y=spans, task="spans", classes=LABELS, name="entities",
                           item_ids=[f"text-{i:04d}" for i in range(n)])
    test = Pool.from_texts(test_texts, y=test_spans, task="spans", classes=LABELS, name="entities-test",
                           item_ids=[f"test-{i:04d}" for i in range(n_test)])
    return pool, test
