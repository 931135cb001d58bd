"""What a report may show about a group of people: differentially private expression mixes.

A head count alone cannot protect a person against someone who adds faces of their own and knows their
scores: with one camera face and four copies of their own photo in a minute, ``5 x share - 4 x own``
would give the camera person's seven probabilities exactly. Three rules together:

**Who may add data.** Only the operator signs in to upload photos (``moodlens.web.auth``).

**Photos do not pad groups of people from videos and cameras.** A photo's scores can be reproduced
exactly by anyone who has the photo (the analysis is deterministic); a camera frame's cannot. So faces
in photos count towards ``min_group_size`` only in groups without any video or camera people; a group
with such people is shown only when they alone are ``min_group_size`` or more. The attack above then
finds the minute hidden.

**Noise (differential privacy).** A group that may be shown has Laplace noise added to its 7 summed
probabilities, from Google's differential-privacy library (``python-dp``, secure noise sampling), before
they are divided by the head count ``n``. One person's probabilities sum to 1, so replacing that person
moves the sum by at most 2 in L1 distance; noise of scale
``2 / epsilon`` on each coordinate makes the released vector ``epsilon``-differentially private for
every member: whatever everyone else's scores (including faces an attacker added and knows), one
person's scores change the probability of any released numbers by at most a factor ``e**epsilon``.
The noisy vector is then projected onto the probability simplex (post-processing, no privacy cost);
valence indices and positive/negative shares are computed from it, so they are covered too.

**Fixed per data version.** The noise is drawn once per version of a group's data (a hash of its
members' rows and the budget) and recorded in the event store, so reloading a page, another
``min_group_size`` or the CLI report show the same numbers and cannot be averaged. Groups with the same
data (an event's only source, the one time bin of a short event) share one release: showing one noisy
vector twice reveals nothing more, and the report does not contradict itself.

**What it does not cover.** Each *new* version of a group (more data arrived) is a new release with
fresh noise; someone who can add data ``k`` times can combine ``k`` releases of a group, ``k x epsilon``
in all (the count is kept per group: ``GroupRelease.versions``). Head counts are exact. Sign-in limits who
may add photos (the operator); docs/privacy.md gives what this costs in accuracy and how often it fails.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from moodlens.events.store import EventStore
from moodlens.settings import MIN_GROUP_SIZE, PRIVACY_EPSILON
from moodlens.spec import EMOTIONS

#: L1 distance between two people's probability vectors, at most: the sum's sensitivity to one person.
SENSITIVITY = 2.0
#: Source kinds whose faces' scores can be reproduced by whoever holds the photo.
PHOTO_KINDS = ("photos", "upload")


def _as_probabilities(person_probs: np.ndarray) -> np.ndarray:
    """Rows made into valid probability vectors (finite, non-negative, summing to 1), so the sensitivity
    bound holds whatever the stored numbers are."""
    rows = np.nan_to_num(np.asarray(person_probs, np.float64).reshape(-1, len(EMOTIONS)), nan=0.0,
                         posinf=0.0, neginf=0.0).clip(0.0, None)
    sums = rows.sum(1, keepdims=True)
    uniform = np.full_like(rows, 1.0 / len(EMOTIONS))
    return np.where(sums > 0, rows / np.where(sums > 0, sums, 1.0), uniform)


def project_to_simplex(vector: np.ndarray) -> np.ndarray:
    """The nearest probability vector (Euclidean distance) to ``vector``."""
    v = np.asarray(vector, np.float64)
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - 1.0
    k = np.arange(1, len(v) + 1)
    rho = np.nonzero(u - cumulative / k > 0)[0][-1]
    return np.maximum(v - cumulative[rho] / (rho + 1), 0.0)


def check_epsilon(epsilon: float) -> None:
    """Refuse a privacy budget that is not a positive, finite number (``nan`` and ``inf`` promise nothing)."""
    if not (0 < epsilon < float("inf")):
        raise ValueError(f"epsilon must be a positive, finite number, got {epsilon}")


def noisy_shares(person_probs: np.ndarray, epsilon: float = PRIVACY_EPSILON) -> np.ndarray:
    """One fresh ``epsilon``-DP release of a group's mean expression probabilities (rows: one per person).

    Every call draws new noise: callers that show the result must keep it (see :class:`PrivateReleases`).
    """
    from pydp.algorithms.numerical_mechanisms import LaplaceMechanism

    check_epsilon(epsilon)
    rows = _as_probabilities(person_probs)
    if not len(rows):
        raise ValueError("a group without people has no expression mix")
    # The vector's whole L1 sensitivity on each coordinate: epsilon-DP for the 7 values together.
    mechanism = LaplaceMechanism(epsilon=epsilon, sensitivity=SENSITIVITY)
    noisy_sum = np.array([mechanism.add_noise(float(total)) for total in rows.sum(0)])
    return project_to_simplex(noisy_sum / len(rows))


def fingerprint(person_probs: np.ndarray, epsilon: float) -> str:
    """A hash of a group's data (rows in any order) and budget: equal exactly when a release may be reused."""
    rows = _as_probabilities(person_probs)
    ordered = rows[np.lexsort(rows.T[::-1])] if len(rows) else rows
    digest = hashlib.sha256(np.float64(epsilon).tobytes())
    digest.update(np.ascontiguousarray(ordered).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Released:
    """What may be shown about one group: its head count and noisy shares, and how many versions of
    the group have been released (the privacy cost so far is ``versions x epsilon``)."""

    people: int
    shares: np.ndarray
    epsilon: float
    versions: int


class PrivateReleases:
    """The released expression mixes of one event's groups, the same numbers for the same data.

    >>> releases = PrivateReleases(store, "gala")                      # doctest: +SKIP
    >>> releases.release("bin:2025-06-01T18:01", person_probs)          # doctest: +SKIP

    ``epsilon=None`` releases exact means: only for analyses on the operator's own machine, never for a
    report that others see or that includes data others could add.
    """

    def __init__(self, store: EventStore, event_name: str, epsilon: float | None = PRIVACY_EPSILON,
                 min_group_size: int = MIN_GROUP_SIZE) -> None:
        if epsilon is not None:
            check_epsilon(epsilon)
        self.store, self.event_name = store, event_name
        self.epsilon, self.min_group_size = epsilon, min_group_size
        self._recorded = store.group_releases(event_name) if epsilon is not None else {}

    def shown(self, people: int, from_photos: int = 0) -> bool:
        """Whether a group of ``people``, ``from_photos`` of them faces in photos, may be shown at all."""
        from_streams = people - from_photos
        return people >= self.min_group_size and not 0 < from_streams < self.min_group_size

    def release(self, group_key: str, person_probs: np.ndarray, from_photos: int = 0) -> Released | None:
        """The group's released numbers, or None when it may not be shown (see :meth:`shown`).

        ``group_key`` names the group within the event (e.g. ``overall``, ``source:3``, ``bin:<start>``);
        ``person_probs`` holds one row of 7 probabilities per person, ``from_photos`` of them from photos.
        """
        people = len(person_probs)
        if not self.shown(people, from_photos):
            return None
        if self.epsilon is None:
            return Released(people, _as_probabilities(person_probs).mean(0), float("inf"), 0)
        version = fingerprint(person_probs, self.epsilon)
        recorded = self._recorded.get(group_key)
        if recorded is None or recorded.fingerprint != version:
            twin = next((r for r in self._recorded.values() if r.fingerprint == version), None)
            shares = twin.shares if twin is not None else json.dumps(noisy_shares(person_probs, self.epsilon).tolist())
            recorded = self.store.record_release(self.event_name, group_key, version, people, self.epsilon, shares)
            self._recorded[group_key] = recorded
        return Released(recorded.people, np.array(json.loads(recorded.shares)), recorded.epsilon, recorded.versions)
