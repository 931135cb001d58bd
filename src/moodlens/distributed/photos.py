"""Photo archives on a Ray cluster: the same results as :meth:`Analyzer.analyze_paths`, from many cores.

A Ray Data pipeline: the files are listed here (as the plain path lists them) -> blocks of
``IMAGES_PER_BLOCK`` paths -> read, decode, detect and classify in :class:`PhotoAnalyzer`, a fixed pool of
actors, each holding one Analyzer (one ONNX session) built from the settings passed whole -> back here,
where the results are put in input order. Reading and decoding run in the actors' processes, next to the
analysis, so decoded pixels never cross the object store, and a separate decoding stage cannot wait for
CPUs the actors hold.

Every worker must see the photos at the same paths (one machine, or a shared file system); a worker that
cannot reports the photo as unreadable, as the plain path would.

A killed actor is restarted and its unfinished block of photos retried (``MAX_TASK_RETRIES`` times, so a
photo that crashes its process every time fails the run instead of looping).
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from moodlens.distributed.cluster import (
    CLIENT_SCHEME,
    LOCAL,
    ClusterError,
    ClusterInfo,
    import_ray,
    parse_address,
    ray_cluster,
)
from moodlens.recognition.faces import Faces
from moodlens.recognition.imageio import ImageError, iter_image_paths
from moodlens.settings import DEFAULTS, AnalysisSettings
from moodlens.spec import NUM_CLASSES

#: Photos per Ray Data block: the unit handed to an actor and retried after a crash. Small, so that work
#: spreads evenly over the actors and a crash repeats little; large enough that Ray's per-block cost
#: (a few ms) is small next to analysing the photos.
IMAGES_PER_BLOCK = 4
#: CPUs each actor reserves; its ONNX session and detector run on one thread.
ACTOR_CPUS = 1
#: Retries of a block whose actor died; actors themselves are restarted without limit.
MAX_TASK_RETRIES = 3

PhotoResult = tuple[Path, Faces | ImageError]


class PhotoAnalyzer:
    """The pipeline's actor stage, one instance per actor: a listed file -> read, decode (as the plain path
    does, with the same checks and messages) -> detect + classify with an Analyzer built once per actor."""

    def __init__(self, settings: AnalysisSettings) -> None:
        from moodlens.recognition.analyzer import Analyzer

        self.analyzer = Analyzer(settings)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        try:
            bgr = self.analyzer.load(row["path"])
        except ImageError as exc:
            return result_row(row["index"], exc)
        return result_row(row["index"], self.analyzer.classify(bgr, self.analyzer.detect(bgr)), bgr.shape[:2])


def result_row(index: int, result: Faces | ImageError, size: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """One photo's result as a pipeline row. Arrays travel as raw bytes, so the float32 scores come back
    exactly and results equal the plain path's bit for bit."""
    error = isinstance(result, ImageError)
    faces = Faces() if error else result
    return {"index": index, "error": str(result) if error else "", "error_kind": result.kind if error else "",
            "boxes": faces.boxes.tobytes(), "detector_scores": faces.detector_scores.tobytes(),
            "probs": faces.probs.tobytes(), "height": int(size[0]), "width": int(size[1])}


def result_from_row(row: dict[str, Any]) -> Faces | ImageError:
    """A pipeline row -> what :meth:`Analyzer.analyze_paths` yields for that photo."""
    if row["error_kind"]:
        return ImageError(str(row["error"]), str(row["error_kind"]))
    return Faces(np.frombuffer(row["boxes"], np.int32).reshape(-1, 4).copy(),
                 np.frombuffer(row["detector_scores"], np.float32).copy(),
                 np.frombuffer(row["probs"], np.float32).reshape(-1, NUM_CLASSES).copy())


def photo_dataset(files: list[Path], settings: AnalysisSettings, workers: int):  # noqa: ANN201 - ray.data.Dataset
    """The Ray Data pipeline over ``files`` (not started yet): one :func:`result_row` per file."""
    ray = import_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one bar, ours, counting photos
    # Ray Data logs every run (INFO) and a failed run's stack traces (ERROR) here as well as in its log files;
    # the user gets our one-line ClusterError instead.
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    items = [{"index": i, "path": str(path)} for i, path in enumerate(files)]
    blocks = max(1, math.ceil(len(items) / IMAGES_PER_BLOCK))
    return ray.data.from_items(items, override_num_blocks=blocks).map(
        PhotoAnalyzer, fn_constructor_args=(settings,), compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=ACTOR_CPUS, max_restarts=-1, max_task_retries=MAX_TASK_RETRIES)


def in_input_order(rows: Iterable[dict[str, Any]], files: list[Path], progress: bool,
                   ) -> Iterator[tuple[Path, Faces | ImageError, tuple[int, int] | None]]:
    """Rows arrive as actors finish them; yield each photo's result (and decoded size) as soon as all
    before it are out."""
    waiting: dict[int, dict[str, Any]] = {}
    done = 0
    with tqdm(total=len(files), desc="analysing", unit="image", disable=not progress) as bar:
        for row in rows:
            waiting[int(row["index"])] = row
            bar.update(1)
            while done in waiting:
                row = waiting.pop(done)
                size = (int(row["height"]), int(row["width"])) if not row["error_kind"] else None
                yield files[done], result_from_row(row), size
                done += 1
    if done != len(files):
        raise ClusterError(f"the Ray run returned {done} of {len(files)} results")


def _run(files: list[Path], settings: AnalysisSettings, address: str, workers: int | None, num_cpus: int | None,
         progress: bool, sizes: bool) -> Iterator[Any]:
    with ray_cluster(address, num_cpus=num_cpus) as cluster:
        pool = _pool_size(cluster, workers)
        if progress:
            tqdm.write(f"Ray cluster {cluster.address}: {cluster.cpus} CPU(s) on {cluster.nodes} node(s), "
                       f"{pool} worker(s)", file=sys.stderr)
        rows = photo_dataset(files, settings, pool).iter_rows()
        for path, result, size in in_input_order(_failures_as_cluster_errors(rows), files, progress):
            yield (path, result, size) if sizes else (path, result)


def _failures_as_cluster_errors(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Whatever Ray raises while running the pipeline (a task that failed for good, a lost cluster) as one line."""
    try:
        yield from rows
    except Exception as exc:  # noqa: BLE001 - Ray raises many types; the user gets the cause of any
        raise ClusterError(f"the Ray run failed: {root_cause(exc)}") from exc


_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")


def root_cause(exc: BaseException) -> str:
    """The line that names the original error in a Ray error's text (which carries the remote traceback and
    ends with Ray's own wrapper lines), else the text's last line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    causes = [line for line in lines if _ERROR_LINE.match(line) and not line.startswith("ray.")]
    return (causes or lines)[-1][:300]


def _pool_size(cluster: ClusterInfo, workers: int | None) -> int:
    if workers is None:
        return cluster.cpus // ACTOR_CPUS
    if not 1 <= workers * ACTOR_CPUS <= cluster.cpus:
        raise ClusterError(f"{workers} workers need {workers * ACTOR_CPUS} CPUs; the Ray cluster at "
                           f"{cluster.address} has {cluster.cpus}")
    return workers


def analyze_paths_on_ray(paths: list[str | Path] | tuple[str | Path, ...], settings: AnalysisSettings = DEFAULTS,
                         *, address: str | None = LOCAL, workers: int | None = None, num_cpus: int | None = None,
                         progress: bool = False, sizes: bool = False) -> Iterator[Any]:
    """:meth:`Analyzer.analyze_paths` on a Ray cluster: (path, Faces) or (path, ImageError) in input order.

    ``address``: see :mod:`moodlens.distributed.cluster` (a local cluster by default; a process already
    connected to Ray uses that connection). ``workers``: actors in the pool (default: one per CPU of the
    cluster). ``num_cpus``: CPUs of a local cluster (default: this machine's usable cores).
    Ray's presence and the address are checked at once; the cluster is joined when iteration starts and
    left when it ends. Raises :class:`ClusterError` with one line for the user. ``sizes``: yield
    (path, result, (height, width) or None) instead, the decoded size that image results report.
    """
    import_ray()
    canonical = parse_address(address)
    if canonical.startswith(CLIENT_SCHEME):
        raise ClusterError(f"Ray Data pipelines do not run through Ray Client ({canonical}): run this on a "
                           "machine of the cluster, with --ray auto or the head's HOST:PORT")
    files = iter_image_paths(paths)
    if not files:
        return iter(())
    return _run(files, settings, canonical, workers, num_cpus, progress, sizes)
