"""A small named-entity data set built on the spot, offline: sentences from templates, and
from parts (who, what they did, when), with people, organisations and places filled in, each
span's offsets known exactly.

Names are made from two disjoint halves of each list of parts (first names, last names,
company stems, places; the words that say what a company is are shared): the pool's texts use
one half, the test texts the other, so span F1 on the test texts measures whether a model
learned what an entity looks like in context, not a list of names. Some sentences carry no
entity at all, and one template has an emoji (a character outside the Basic Multilingual
Plane) before a name, so that offsets are counted in code points from the first texts on.
"""

from __future__ import annotations

import numpy as np

# Names are made of parts, as real ones are: first and last names; an organisation's stem and,
# mostly, a word that says what it is ("Bank", "Labs"). The stems, first and last names and
# places are split in halves (pool, test); the kind words are shared, as they are in the world.
FIRST = ["Alice", "Bob", "Carla", "Dmitri", "Erin", "Farah", "Gustav", "Hana", "Ivan", "Julia", "Kofi",
         "Lena", "Marco", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Samir", "Tara", "Umar", "Vera",
         "Wei", "Yusuf", "Amara", "Bruno", "Chloe", "Dario", "Elif", "Femi", "Greta", "Hugo"]
LAST = ["Moreau", "Okafor", "Mendes", "Volkov", "Walsh", "Haddad", "Lind", "Sato", "Petrov", "Costa",
        "Mensah", "Berg", "Rossi", "Karim", "Diaz", "Nair", "Blake", "Lopez", "Aziz", "Singh", "Farouk",
        "Novak", "Chen", "Demir", "Adeyemi", "Brandt", "Castillo", "Dubois", "Eriksen", "Fontaine"]
STEMS = ["Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Cyberdyne", "Hooli",
         "Vandelay", "Soylent", "Tyrell", "Oceanic", "Bluesun", "Aperture", "Blackmesa", "Massive",
         "Gringott", "Monarch", "Piedpiper", "Zenith", "Orbital", "Redwood", "Silverline", "Keystone",
         "Halcyon", "Polaris", "Granite", "Meridian", "Lumen"]
KINDS = ["Corp", "Bank", "Group", "Labs", "Systems", "Motors", "Air", "Foods", "Health", "Industries",
         "Media", "Energy", "Insurance", "Capital"]
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
# Sentences built from parts, so that a model meets new contexts for hundreds of texts: who
# (a person, an organisation, or a phrase around one), what they did (to whom or where), when.
SUBJECTS = ["{PER}", "{ORG}", "Minister {PER}", "{PER}, the head of {ORG},", "Officials at {ORG}",
            "Coach {PER}", "The lawyers of {PER}", "{ORG}, based in {LOC},", "Dr {PER}", "Analysts at {ORG}"]
ACTIONS = ["met {PER} in {LOC}", "visited {LOC}", "criticised {ORG}", "praised {PER}", "sued {ORG}",
           "moved to {LOC}", "signed a deal with {ORG}", "left {ORG} for {ORG}", "thanked {PER} and {PER}",
           "returned from {LOC}", "opened a plant near {LOC}", "warned {ORG} about costs",
           "bought a stake in {ORG}", "flew to {LOC} to see {PER}", "spoke to reporters",
           "denied the claims", "raised its forecast"]
WHEN = ["", " on Monday", " last week", " after a long dispute", " in March", " this morning",
        " despite protests in {LOC}", " before the election", " at a hearing in {LOC}"]
LABELS = ["LOC", "ORG", "PER"]


def _name(label: str, half: int, rng) -> str:
    def pick(words):
        part = words[half::2]
        return part[int(rng.integers(len(part)))]
    if label == "PER":
        return f"{pick(FIRST)} {pick(LAST)}"
    if label == "ORG":  # a fifth are a bare stem ("Hooli"), as some companies are
        return pick(STEMS) if rng.random() < 0.2 else f"{pick(STEMS)} {KINDS[int(rng.integers(len(KINDS)))]}"
    return pick(PLACES)


def entity_texts(n: int, *, seed: int = 0, half: int = 0) -> tuple[list[str], list[list[tuple]]]:
    """`n` texts of one to three sentences and their spans `(start, end, label)`. `half`
    (0 or 1) picks which half of each name list fills them (the pool one, the test the other)."""
    rng = np.random.default_rng([seed, half])
    texts, spans = [], []
    for _ in range(n):
        text, marks = "", []
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.3:  # a fixed sentence, or one made of parts
                template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
            else:
                template = (SUBJECTS[int(rng.integers(len(SUBJECTS)))] + " " + ACTIONS[int(rng.integers(
                    len(ACTIONS)))] + WHEN[int(rng.integers(len(WHEN)))] + ".")
            if text:
                text += " "
            rest = template
            while "{" in rest:
                before, _, after = rest.partition("{")
                label, _, rest = after.partition("}")
                text += before
                name = _name(label, half, rng)
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
