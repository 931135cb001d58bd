"""``moodlens release`` and the provenance on its cards: a card's training cost covers earlier cycles and
teachers, each run once; a release writes a card that loads, matches its evaluation and keeps the history."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from moodlens.card import ExportCheck, ModelCard, NetProvenance, Provenance, file_sha256  # noqa: E402
from moodlens.dataset.readers import load_dataset  # noqa: E402
from moodlens.train import provenance  # noqa: E402
from moodlens.train.config import TrainConfig  # noqa: E402
from moodlens.train.loop import train  # noqa: E402
from moodlens.train.release import markdown_path, release, retime  # noqa: E402

TINY = TrainConfig(epochs=1, batch_size=16, widths=(8, 16), ema_decay=0.9, threads=1)


def _run(runs: Path, name: str, minutes: float, device: str = "cpu", **cfg) -> Path:
    (runs / name).mkdir(parents=True)
    path = runs / name / "final.pt"
    torch.save({"model": {"w.weight": torch.zeros(3, 2)}, "config": asdict(TrainConfig(**cfg)), "epochs": 5,
                "elapsed_s": minutes * 60, "device": device,
                "machine": "AMD EPYC + NVIDIA H200" if device == "cuda" else "AMD EPYC, 2 threads"}, path)
    return path


def _exported(path: Path, name: str, nets: list[dict]) -> str:
    """A stand-in ONNX file with a valid card listing ``nets`` (only the card is read)."""
    path.write_bytes(b"not a graph: only its card is read")
    base = {"config": TrainConfig(), "params": 6, "train_minutes": 1.0, "epochs_total": 5, "train_minutes_total": 1.0,
            "device": "cpu"}
    full = [NetProvenance(**(base | n)) for n in nets]
    ModelCard(name=name, sha256=file_sha256(path), precision="float32", params=6 * len(full),
              parity=ExportCheck(parity_max_abs_diff=0.0, parity_n=1, tolerance=1e-4),
              training=Provenance(nets=tuple(full))).save(path.with_suffix(".json"))
    return str(path)


def test_cost_counts_cycles_and_teachers_once(tmp_path):
    runs = tmp_path / "runs"
    big_a = _run(runs, "big-a", 3.0, device="cuda")
    big_b = _run(runs, "big-b", 4.0, device="cuda")
    # A run made on another machine names its teachers by the paths they had there: found beside it here.
    first = _run(runs, "first", 10.0, device="cuda", teachers=("/tmp/elsewhere/big-a/final.pt",))
    # An ONNX teacher's card lists its networks; big-a is also first's teacher and is counted once.
    ens = _exported(tmp_path / "ens.onnx", "ens-int8", [{"checkpoint": str(big_a)}, {"checkpoint": str(big_b)}])
    _run(runs, "second", 20.0, init_from=str(first), teachers=(ens,))

    provenance.read_checkpoint.cache_clear()
    net = provenance.net_provenance(runs / "second" / "final.pt")
    assert provenance.read_checkpoint.cache_info().misses == 4  # second, first, big-a, big-b: each read once
    assert net.train_minutes_total == 3.0 + 4.0 + 10.0 + 20.0 and net.train_minutes == 20.0
    assert net.epochs_total == 10  # this cycle and the one it started from
    assert net.machines == ("AMD EPYC, 2 threads", "one NVIDIA H200 GPU")
    assert net.devices == ("cpu", "cuda") and net.params == 6
    assert net.teachers == (f"{ens} (ens-int8, scored once on the unaugmented training faces)",)
    assert provenance.net_provenance(first).teachers == (str(big_a),)


def test_a_cycle_started_from_an_exported_model_counts_that_models_cost(tmp_path):
    """``--init-from X.onnx`` (weights read back from a shipped graph): epochs and minutes of the runs behind X
    come from X's card, once, even when X is also a teacher."""
    prev = _exported(tmp_path / "prev.onnx", "prev-int8", [
        {"checkpoint": str(tmp_path / "gone" / "final.pt"), "epochs_total": 135, "train_minutes_total": 142.8,
         "devices": ("cpu", "cuda"), "machines": ("one NVIDIA H200 GPU", "a CPU")}])
    _run(tmp_path / "runs", "cont", 60.0, init_from=prev, teachers=(prev,))
    provenance.read_checkpoint.cache_clear()
    net = provenance.net_provenance(tmp_path / "runs" / "cont" / "final.pt")
    assert net.epochs_total == 5 + 135
    assert net.train_minutes_total == 60.0 + 142.8
    assert net.devices == ("cpu", "cuda") and set(net.machines) == {"a CPU", "one NVIDIA H200 GPU",
                                                                     "AMD EPYC, 2 threads"}
    assert net.start == "the exported prev-int8, weights read back from its graph"


@pytest.fixture(scope="module")
def runs(synthetic_fer_csv_gz, tmp_path_factory):
    data = load_dataset(synthetic_fer_csv_gz)
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        train(replace(TINY, seed=seed), data, root / f"s{seed}")
    return data, root


def test_release_writes_cards_that_load_and_match_the_evaluation(runs, tmp_path):
    from moodlens.dataset.evaluate import evaluate

    data, root = runs
    models, docs = tmp_path / "models", tmp_path / "repo"
    card = release([root / "s0", root / "s1"], data, ["moodlens train ... --seed 0", "moodlens train ... --seed 1"],
                   name="tiny-ens", target="accurate", models=models, docs=docs, speed_seconds=0.3)
    onnx = models / "accurate.onnx"
    assert ModelCard.load(onnx.with_suffix(".json")) == card and card.sha256 == file_sha256(onnx)
    assert card.target == "accurate" and card.ensemble_size == 2 and card.training.commands[1].endswith("seed 1")
    report = evaluate(data, model=onnx, split="PublicTest")
    test = card.split("PublicTest")
    assert test.accuracy == report["accuracy"] and test.n == report["n"] == 70
    assert {c: m.f1 for c, m in test.per_class.items()} == {c: m["f1"] for c, m in report["per_class"].items()}
    assert card.speed.onnxruntime_faces_per_s_batch64 > 0 and len(card.history) == 1
    assert card.history[0].accuracy == round(report["accuracy"], 4) and card.history[0].epochs == "1+1"
    md = markdown_path(docs, "accurate").read_text()
    assert md.startswith("# Model card: tiny-ens (") and f"| accuracy | **{test.accuracy:.4f}** |" in md
    assert (docs / "docs" / "model" / "accurate-publictest" / "confusion_matrix.png").is_file()

    # Evaluations by others stay on the card only while the file they measured ships; history carries over.
    evaluation = {"data": "held-out faces", "accuracy": 0.5, "measured_by": "someone else", "date": "2026-12-02",
                  "method": "moodlens evaluate", "model_sha256": card.sha256}
    ModelCard.model_validate(card.model_dump() | {"independent_evaluations": [evaluation]}).save(onnx.with_suffix(
        ".json"))
    timed = retime("accurate", models=models, docs=docs, speed_seconds=0.3)
    assert timed.independent_evaluations[0].accuracy == 0.5 and timed.metrics == card.metrics
    assert "## Independent evaluations" in markdown_path(docs, "accurate").read_text()
    again = release([root / "s0"], data, ["moodlens train ..."], name="tiny", target="accurate", int8=True,
                    models=models, docs=docs, speed_seconds=0.3)
    assert again.precision == "int8" and again.parity.int8 is not None and not again.independent_evaluations
    assert [h.name for h in again.history] == ["tiny-ens", "tiny"]


def test_release_command_needs_its_inputs(tmp_path):
    from typer.testing import CliRunner

    from moodlens.cli import app

    result = CliRunner().invoke(app, ["release", "--target", "x", "--models", str(tmp_path)])
    assert result.exit_code == 1 and "needs --run, --data, --command, --name (or --retime)" in result.output
    result = CliRunner().invoke(app, ["release", "--target", "x", "--models", str(tmp_path), "--retime"])
    assert result.exit_code == 1 and "no model card beside" in result.output
