"""Photo archives on a local Ray cluster started by this module: the same faces, files and messages as the
plain path, in input order, with progress, and complete after a worker process is killed mid-run."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from ray_nodes import dies_once_detector
from recognition_media import photo_archive
from typer.testing import CliRunner

pytest.importorskip("ray")

from moodlens.cli import app  # noqa: E402
from moodlens.distributed.cluster import LOCAL, ClusterError  # noqa: E402
from moodlens.distributed.photos import analyze_paths_on_ray  # noqa: E402
from moodlens.recognition.analyzer import Analyzer  # noqa: E402
from moodlens.recognition.imageio import ImageError  # noqa: E402
from moodlens.settings import AnalysisSettings  # noqa: E402

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return photo_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def plain(archive):
    return list(Analyzer().analyze_paths([archive]))


def assert_same_results(expected, got) -> None:
    assert [path for path, _ in got] == [path for path, _ in expected]
    for (path, want), (_, have) in zip(expected, got, strict=True):
        assert type(have) is type(want), path
        if isinstance(want, ImageError):
            assert (str(have), have.kind) == (str(want), want.kind)
        else:
            for name in ("boxes", "detector_scores", "probs", "track_ids"):
                assert np.array_equal(getattr(have, name), getattr(want, name)), (path, name)


def test_archive_is_real(plain):
    """The folder holds what the other tests need: faces, a photo without one and an unreadable file."""
    counts = [len(r) if not isinstance(r, ImageError) else -1 for _, r in plain]
    assert counts.count(1) == 6 and counts.count(0) == 1 and counts.count(-1) == 1


def test_cli_gives_the_same_files_and_messages_with_and_without_ray(ray_local, archive, tmp_path):
    def run(*extra: str) -> tuple[str, Path]:
        out = tmp_path / ("ray" if extra else "plain")
        result = runner.invoke(app, ["analyze", str(archive), "--json", str(out / "faces.json"), "--csv",
                                     str(out / "faces.csv"), "--out", str(out / "annotated"), *extra])
        assert result.exit_code == 0, result.output
        return result, out

    plain_run, plain_out = run()
    ray_run, ray_out = run("--ray", LOCAL)
    assert (ray_out / "faces.json").read_text() == (plain_out / "faces.json").read_text()
    assert (ray_out / "faces.csv").read_text() == (plain_out / "faces.csv").read_text()
    assert len(list(csv.DictReader(io.StringIO((ray_out / "faces.csv").read_text())))) == 6
    annotated = sorted(p.name for p in (plain_out / "annotated").iterdir())
    assert len(annotated) == 7 and annotated == sorted(p.name for p in (ray_out / "annotated").iterdir())
    for name in annotated:
        assert (ray_out / "annotated" / name).read_bytes() == (plain_out / "annotated" / name).read_bytes(), name
    assert ray_run.stdout == plain_run.stdout  # one line per photo in the same order, then the totals
    assert "7 images analysed, 1 skipped: 1 unreadable image" in ray_run.stdout
    def skipped_lines(output: str) -> list[str]:  # the progress bar may share a line with the message
        return [line[line.index("skipped "):] for line in output.replace("\r", "\n").splitlines() if "skipped " in line]

    skipped = skipped_lines(ray_run.output)
    assert skipped == skipped_lines(plain_run.output)
    assert len(skipped) == 1 and "broken.jpg" in skipped[0]
    # progress: the cluster it runs on, and the bar counting photos up to the last
    assert "Ray cluster local: 2 CPU(s) on 1 node(s), 2 worker(s)" in ray_run.output
    assert "analysing" in ray_run.output and "8/8" in ray_run.output
    assert json.loads((ray_out / "faces.json").read_text())["images"][0]["faces"][0]["emotion"] == "happy"


@pytest.mark.parametrize("workers", [1, 2])
def test_results_come_back_in_input_order(ray_local, archive, plain, workers):
    files = [path for path, _ in plain][::-1]  # not the sorted order a folder gives
    expected = list(reversed(plain))
    got = list(analyze_paths_on_ray(files, workers=workers))
    assert_same_results(expected, got)


def test_more_workers_than_cpus_is_a_clear_error(ray_local, archive):
    with pytest.raises(ClusterError, match="3 workers need 3 CPUs; the Ray cluster at local has 2"):
        list(analyze_paths_on_ray([archive], workers=3))


def test_worker_killed_mid_run_still_gives_the_complete_result(ray_local, archive, plain, tmp_path):
    marker = tmp_path / "killed.pid"
    settings = AnalysisSettings(detector=dies_once_detector(marker, on_call=2))  # mid-block, work in flight
    got = list(analyze_paths_on_ray([archive], settings, workers=2))
    killed = int(marker.read_text())
    assert killed != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)  # the worker process is really gone
    assert_same_results(plain, got)


def test_a_run_that_fails_on_the_cluster_is_one_clear_error(ray_local, archive):
    """An error other than an unreadable photo (here: a detector that breaks on every photo) ends the run
    with the cause in one line, not a traceback from Ray's internals."""

    class Broken:
        name = "broken"

        def detect(self, bgr):  # noqa: ANN001, ANN202
            raise RuntimeError("the detector broke")

    with pytest.raises(ClusterError, match="the Ray run failed: .*the detector broke"):
        list(analyze_paths_on_ray([archive], AnalysisSettings(detector=Broken()), workers=1))
