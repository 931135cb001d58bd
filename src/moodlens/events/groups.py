"""Groups of people (the event, a time bin, a source, a part of an event) and the release of their numbers.

:func:`release_groups` is the one place where a group's expression numbers are released or hidden;
every report, comparison, CSV and web page gets them from it. Three rules hide numbers:

- **minimum group size**: a group with fewer than ``min_group_size`` people shows only its head count;
- **photos do not pad camera groups**: a group with people from videos or cameras is shown only when
  those people alone are ``min_group_size`` or more (faces in photos can be added, and their scores
  reproduced, by whoever holds the photos: ``moodlens.events.privacy``);
- **complementary suppression**: when the groups hidden by the rules above in a breakdown (all time
  bins, all sources) together hold fewer than ``min_group_size`` people, the smallest shown groups are
  hidden too, so that subtracting the shown groups from the event total cannot reveal a small group.

Each hidden group says which rule hid it (``hidden_by``). The shares of a shown group come from
``private`` when given: differentially private noisy shares (``moodlens.events.privacy.PrivateReleases``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from moodlens.spec import EMOTIONS, VALENCE

HIDDEN_SMALL = "min_group_size"
HIDDEN_PHOTOS = "photo_padding"
HIDDEN_COMPLEMENT = "complementary"
HIDING_RULES = (HIDDEN_SMALL, HIDDEN_PHOTOS, HIDDEN_COMPLEMENT)
#: ``state`` of a group: no one seen, numbers hidden by a rule, numbers shown.
EMPTY, HIDDEN, SHOWN = "empty", "hidden", "shown"

SHARE_COLUMNS = [f"share_{e}" for e in EMOTIONS]
VALENCE_GROUPS = {"positive": [e for e in EMOTIONS if VALENCE[e] > 0],
                  "neutral": [e for e in EMOTIONS if VALENCE[e] == 0],
                  "negative": [e for e in EMOTIONS if VALENCE[e] < 0]}
#: Columns that only a shown group has (all derived from its people's expressions).
PROTECTED = ["valence_index", *VALENCE_GROUPS, *SHARE_COLUMNS]
_VALENCE = np.array([VALENCE[e] for e in EMOTIONS], np.float64)
_GROUP_MATRIX = np.array([[e in members for e in EMOTIONS] for members in VALENCE_GROUPS.values()], np.float64)


def rule_text(hidden_by: str | None, min_group_size: int) -> str:
    """Why a number is hidden, in words (for tables, chart legends and notes)."""
    if hidden_by == HIDDEN_SMALL:
        return f"hidden: fewer than {min_group_size} people"
    if hidden_by == HIDDEN_PHOTOS:
        return f"hidden: fewer than {min_group_size} people from video or cameras"
    if hidden_by == HIDDEN_COMPLEMENT:
        return "hidden: complementary rule"
    return ""


def _bincount_rows(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per-index sums of the rows of ``values`` (one ``bincount`` per column: no Python loop over rows)."""
    return np.stack([np.bincount(index, weights=values[:, k], minlength=n) for k in range(values.shape[1])], 1)


def aggregate(group: np.ndarray, person: np.ndarray, probs: np.ndarray, n_groups: int,
              photo: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """People, faces and mean expression shares per group.

    ``group``, ``person``: per observation, its group index and person index; ``probs``: its 7
    probabilities; ``photo``: whether it comes from a photo. A person counts once per group, with their
    probabilities averaged over their observations in it, so everyone weighs the same however long they
    were seen. Also returned: ``photo_people`` per group, and ``pair_group`` / ``person_means``, each
    (group, person) pair's group and mean probabilities (the rows a private release is computed from).
    """
    n_people = int(person.max()) + 1 if len(person) else 1
    key = group.astype(np.int64) * n_people + person
    pairs, inverse = np.unique(key, return_inverse=True)
    seen = np.bincount(inverse, minlength=len(pairs))
    person_means = _bincount_rows(inverse, probs, len(pairs)) / np.maximum(seen, 1)[:, None]
    pair_group = pairs // n_people
    people = np.bincount(pair_group, minlength=n_groups)
    means = _bincount_rows(pair_group, person_means, n_groups) / np.maximum(people, 1)[:, None]
    photo_pairs = (np.bincount(inverse, weights=photo.astype(np.float64), minlength=len(pairs)) > 0
                   if photo is not None and len(pairs) else np.zeros(len(pairs), bool))
    return {"people": people, "faces": np.bincount(group, minlength=n_groups), "means": means,
            "photo_people": np.bincount(pair_group, weights=photo_pairs, minlength=n_groups).astype(np.int64),
            "pair_group": pair_group, "person_means": person_means}


def release_groups(people: np.ndarray, faces: np.ndarray, means: np.ndarray, min_group_size: int,
                   complementary: bool = True,
                   from_photos: np.ndarray | None = None,
                   private: Callable[[int], np.ndarray] | None = None) -> pd.DataFrame:
    """The releasable numbers of a breakdown of groups: one row per group.

    Columns: ``people``, ``faces``, ``state`` (:data:`EMPTY`, :data:`HIDDEN`, :data:`SHOWN`),
    ``hidden_by`` (one of :data:`HIDING_RULES` or ``None``), ``valence_index``,
    ``positive``/``neutral``/``negative`` and ``share_<expression>``. Hidden groups keep only their
    counts. How many people had each expression as their main one is never released: exact counts
    cannot be made private this way. ``complementary``: apply complementary suppression across the rows
    (a breakdown of one total); off for a single group. ``from_photos``: per group, how many of its people are faces in
    photos (the photo-padding rule). ``private``: the released shares of shown group ``i`` (noisy);
    without it the exact means are shown (the operator's own analyses only).
    """
    if min_group_size < 1:
        raise ValueError("min_group_size must be at least 1")
    people = np.asarray(people, np.int64)
    hidden_by = np.where((people > 0) & (people < min_group_size), HIDDEN_SMALL, None).astype(object)
    if from_photos is not None:
        streams = people - np.asarray(from_photos, np.int64)
        hidden_by[(hidden_by == None) & (streams > 0) & (streams < min_group_size)] = HIDDEN_PHOTOS  # noqa: E711
    if complementary:
        hidden_by[_complement(people, hidden_by != None, min_group_size)] = HIDDEN_COMPLEMENT  # noqa: E711
    state = np.where(people == 0, EMPTY, np.where(hidden_by != None, HIDDEN, SHOWN))  # noqa: E711 - elementwise
    frame = pd.DataFrame({"people": people, "faces": np.asarray(faces, np.int64),
                          "state": pd.Series(state, dtype=object), "hidden_by": pd.Series(hidden_by, dtype=object)})
    shown = state == SHOWN
    if private is not None and shown.any():
        means = np.array(means, np.float64, copy=True)
        for i in np.flatnonzero(shown):  # one release per shown group (a few hundred at most)
            means[i] = private(int(i))
    numbers = {"valence_index": np.round(100.0 * means @ _VALENCE, 1)}
    numbers.update(zip(VALENCE_GROUPS, np.round(means @ _GROUP_MATRIX.T, 4).T, strict=True))
    numbers.update(zip(SHARE_COLUMNS, np.round(means, 4).T, strict=True))
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
    return {rule: int(counts.get(rule, 0)) for rule in HIDING_RULES}
