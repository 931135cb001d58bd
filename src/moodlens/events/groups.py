"""Groups of people (the event, a time bin, a source, a part of an event) and the release of their numbers.

:func:`release_groups` is the one place where a group's expression numbers are released or hidden;
every report, comparison, CSV and web page gets them from it. Two rules hide numbers:

- **minimum group size**: a group with fewer than ``min_group_size`` people shows only its head count;
- **complementary suppression**: when the groups hidden by the first rule in a breakdown (all time
  bins, all sources) together hold fewer than ``min_group_size`` people, the smallest shown groups are
  hidden too, so that subtracting the shown groups from the event total cannot reveal a small group.

Each hidden group says which rule hid it (``hidden_by``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from moodlens.spec import EMOTIONS, VALENCE

HIDDEN_SMALL = "min_group_size"
HIDDEN_COMPLEMENT = "complementary"
#: ``state`` of a group: no one seen, numbers hidden by a rule, numbers shown.
EMPTY, HIDDEN, SHOWN = "empty", "hidden", "shown"

SHARE_COLUMNS = [f"share_{e}" for e in EMOTIONS]
MAIN_COLUMNS = [f"main_{e}" for e in EMOTIONS]
VALENCE_GROUPS = {"positive": [e for e in EMOTIONS if VALENCE[e] > 0],
                  "neutral": [e for e in EMOTIONS if VALENCE[e] == 0],
                  "negative": [e for e in EMOTIONS if VALENCE[e] < 0]}
#: Columns that only a shown group has (all derived from its people's expressions).
PROTECTED = ["valence_index", *VALENCE_GROUPS, *SHARE_COLUMNS, *MAIN_COLUMNS]
_VALENCE = np.array([VALENCE[e] for e in EMOTIONS], np.float64)
_GROUP_MATRIX = np.array([[e in members for e in EMOTIONS] for members in VALENCE_GROUPS.values()], np.float64)


def rule_text(hidden_by: str | None, min_group_size: int) -> str:
    """Why a number is hidden, in words (for tables, chart legends and notes)."""
    if hidden_by == HIDDEN_SMALL:
        return f"hidden: fewer than {min_group_size} people"
    if hidden_by == HIDDEN_COMPLEMENT:
        return "hidden: complementary rule"
    return ""


def _bincount_rows(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per-index sums of the rows of ``values`` (one ``bincount`` per column: no Python loop over rows)."""
    return np.stack([np.bincount(index, weights=values[:, k], minlength=n) for k in range(values.shape[1])], 1)


def aggregate(group: np.ndarray, person: np.ndarray, probs: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """People, faces, mean expression shares and main-expression counts per group.

    ``group``, ``person``: per observation, its group index and person index; ``probs``: its 7
    probabilities. A person counts once per group, with their probabilities averaged over their
    observations in it, so everyone weighs the same however long they were seen.
    """
    n_people = int(person.max()) + 1 if len(person) else 1
    key = group.astype(np.int64) * n_people + person
    pairs, inverse = np.unique(key, return_inverse=True)
    seen = np.bincount(inverse, minlength=len(pairs))
    person_means = _bincount_rows(inverse, probs, len(pairs)) / np.maximum(seen, 1)[:, None]
    pair_group = pairs // n_people
    people = np.bincount(pair_group, minlength=n_groups)
    means = _bincount_rows(pair_group, person_means, n_groups) / np.maximum(people, 1)[:, None]
    main = np.bincount(pair_group * len(EMOTIONS) + person_means.argmax(1) if len(pairs) else pair_group,
                       minlength=n_groups * len(EMOTIONS)).reshape(n_groups, len(EMOTIONS))
    return {"people": people, "faces": np.bincount(group, minlength=n_groups), "means": means, "main": main}


def release_groups(people: np.ndarray, faces: np.ndarray, means: np.ndarray, min_group_size: int,
                   main: np.ndarray | None = None, complementary: bool = True) -> pd.DataFrame:
    """The releasable numbers of a breakdown of groups: one row per group.

    Columns: ``people``, ``faces``, ``state`` (:data:`EMPTY`, :data:`HIDDEN`, :data:`SHOWN`),
    ``hidden_by`` (:data:`HIDDEN_SMALL`, :data:`HIDDEN_COMPLEMENT` or ``None``), ``valence_index``,
    ``positive``/``neutral``/``negative``, ``share_<expression>`` and, when ``main`` is given,
    ``main_<expression>`` (people with it as their main expression). Hidden groups keep only their
    counts. ``complementary``: apply complementary suppression across the rows (a breakdown of one
    total); off for a single group.
    """
    if min_group_size < 1:
        raise ValueError("min_group_size must be at least 1")
    people = np.asarray(people, np.int64)
    hidden_by = np.where((people > 0) & (people < min_group_size), HIDDEN_SMALL, None).astype(object)
    if complementary:
        hidden_by[_complement(people, hidden_by == HIDDEN_SMALL, min_group_size)] = HIDDEN_COMPLEMENT
    state = np.where(people == 0, EMPTY, np.where(hidden_by != None, HIDDEN, SHOWN))  # noqa: E711 - elementwise
    frame = pd.DataFrame({"people": people, "faces": np.asarray(faces, np.int64),
                          "state": pd.Series(state, dtype=object), "hidden_by": pd.Series(hidden_by, dtype=object)})
    shown = state == SHOWN
    numbers = {"valence_index": np.round(100.0 * means @ _VALENCE, 1)}
    numbers.update(zip(VALENCE_GROUPS, np.round(means @ _GROUP_MATRIX.T, 4).T, strict=True))
    numbers.update(zip(SHARE_COLUMNS, np.round(means, 4).T, strict=True))
    if main is not None:
        numbers.update(zip(MAIN_COLUMNS, np.asarray(main, np.int64).T, strict=True))
    for column, values in numbers.items():
        frame[column] = pd.Series(values, dtype=object).where(shown, None)
    return frame


def _complement(people: np.ndarray, small: np.ndarray, min_group_size: int) -> np.ndarray:
    """Mask of the smallest shown groups to hide so the hidden groups hold ``min_group_size`` people or more."""
    extra = np.zeros(len(people), bool)
    hidden_people = int(people[small].sum())
    if not 0 < hidden_people < min_group_size:
        return extra
    candidates = np.flatnonzero(~small & (people > 0))
    order = candidates[np.argsort(people[candidates], kind="stable")]
    reached = np.flatnonzero(hidden_people + np.cumsum(people[order]) >= min_group_size)
    extra[order[: reached[0] + 1 if len(reached) else len(order)]] = True
    return extra


def hidden_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many groups of a breakdown each rule hid."""
    counts = frame["hidden_by"].value_counts()
    return {rule: int(counts.get(rule, 0)) for rule in (HIDDEN_SMALL, HIDDEN_COMPLEMENT)}
