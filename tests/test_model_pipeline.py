"""End to end on a tiny synthetic dataset: train -> resume -> export (ONNX parity) -> evaluate.

Also checks that labels and preprocessing are defined once and shared by training, export and runtime.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from moodlens.card import ModelCard, file_sha256  # noqa: E402
from moodlens.dataset.evaluate import (  # noqa: E402
    apply_temperature,
    compute_metrics,
    evaluate,
    expected_calibration_error,
    fit_temperature,
)
from moodlens.dataset.readers import load_dataset  # noqa: E402
from moodlens.recognition.classifier import EmotionClassifier  # noqa: E402
from moodlens.recognition.preprocess import to_model_input  # noqa: E402
from moodlens.spec import EMOTIONS  # noqa: E402
from moodlens.train.augment import center_crop  # noqa: E402
from moodlens.train.export import PARITY_TOLERANCE, export_onnx, load_checkpoint  # noqa: E402
from moodlens.train.loop import TrainConfig, predict_probs, train  # noqa: E402
from moodlens.train.model import EmotionNet, ProbabilityModel  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src" / "moodlens"
#: A tiny net, small batches and a fast EMA so two epochs on 210 faces learn the patterns; the rest is the
#: default recipe. One thread: tiny ops on a busy machine are much slower with more.
TINY = TrainConfig(epochs=2, batch_size=16, widths=(16, 32), ema_decay=0.9, threads=1)


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset(synthetic_fer_csv_gz):
    return load_dataset(synthetic_fer_csv_gz)


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    final = train(TINY, dataset, out)
    assert final == out / "final.pt"
    return out


@pytest.fixture(scope="module")
def onnx_model(run, dataset, tmp_path_factory) -> tuple[Path, ModelCard]:
    out = tmp_path_factory.mktemp("export") / "tiny.onnx"
    card = export_onnx(run / "final.pt", out, parity_faces=dataset.split("PublicTest").images)
    return out, card


def test_training_writes_every_artefact(run, dataset):
    for name in ("last.pt", "final.pt", "metrics.csv", "curves.png", "config.json", "data.json"):
        assert (run / name).stat().st_size > 0, name
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "train_acc", "val_acc", "val_ema_acc", "lr", "elapsed_s"} <= set(rows[0])
    assert TrainConfig.from_dict(json.loads((run / "config.json").read_text())) == TINY
    data = json.loads((run / "data.json").read_text())
    assert data["n_train"] == len(dataset.split("Training")) == 210 and data["skipped_bad"]["count"] == 0
    # The patterns are learnable: far above chance (1/7) after two epochs.
    assert float(rows[-1]["val_ema_acc"]) > 0.5


def test_resume_continues_exactly(run, dataset, tmp_path):
    """Stopping after epoch 1 and resuming gives the same run as training straight through."""
    assert train(TINY, dataset, tmp_path, stop_after_epoch=1) == tmp_path / "last.pt"
    assert not (tmp_path / "final.pt").exists()
    assert torch.load(tmp_path / "last.pt", weights_only=False)["epoch"] == 1
    train(TINY, dataset, tmp_path, resume=True)
    straight = (run / "metrics.csv").read_text().splitlines()
    resumed = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(resumed) == 3  # header + 2 epochs, the first not repeated
    for a, b in zip(straight, resumed, strict=True):  # same losses and accuracies; wall times differ
        assert a.split(",")[:4] == b.split(",")[:4]
    ref = torch.load(run / "final.pt", weights_only=False)["model"]
    got = torch.load(tmp_path / "final.pt", weights_only=False)["model"]
    for key in ref:
        torch.testing.assert_close(got[key], ref[key], rtol=0, atol=1e-6, msg=key)


def test_resume_refuses_a_different_recipe(run, dataset, tmp_path):
    train(TINY, dataset, tmp_path, stop_after_epoch=1)
    with pytest.raises(ValueError, match="different config"):
        train(replace(TINY, lr=0.05), dataset, tmp_path, resume=True)


def test_init_from_starts_from_the_earlier_weights(run, dataset, tmp_path):
    # With a zero learning rate the weights cannot move, so a second cycle that starts from
    # run/final.pt must end with exactly those conv weights; a fresh start would not.
    start = torch.load(run / "final.pt", weights_only=False)["model"]
    cfg = replace(TINY, epochs=1, lr=0.0, init_from=str(run / "final.pt"))
    again = torch.load(train(cfg, dataset, tmp_path / "second"), weights_only=False)["model"]
    convs = [k for k in start if k.endswith("weight") and start[k].ndim == 4]
    assert convs and all(torch.equal(start[k], again[k]) for k in convs)
    fresh = torch.load(train(replace(cfg, init_from=None), dataset, tmp_path / "fresh"), weights_only=False)["model"]
    assert not all(torch.equal(start[k], fresh[k]) for k in convs)


def _crops(faces: np.ndarray) -> np.ndarray:
    return center_crop(torch.from_numpy(faces).float().unsqueeze(1)).numpy()


@pytest.mark.parametrize("int8", [False, True])
def test_net_from_onnx_computes_what_the_exported_graph_computes(int8, run, onnx_model, dataset, tmp_path):
    """Weights read back from an export (BatchNorm folded, int8 dequantised) give the graph's probabilities,
    and the restored BatchNorm keeps training-mode features equal to eval-mode ones on its own faces."""
    from moodlens.train.from_onnx import net_from_onnx

    path = onnx_model[0]
    if int8:
        path = tmp_path / "q.onnx"
        export_onnx(run / "final.pt", path, calibration_faces=dataset.split("Training").images[:64],
                    int8_min_agreement=0.9)
    train_crops, faces = _crops(dataset.split("Training").images), dataset.split("PublicTest").images
    net, card = net_from_onnx(path, train_crops)
    assert card.training.nets[0].config.widths == TINY.widths
    got, ref = predict_probs(net, faces, "cpu"), EmotionClassifier(path).predict(faces)
    if int8:  # the graph also rounds activations to 8 bits; the read-back net keeps them in float
        assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.9 and np.abs(got - ref).max() < 0.2
    else:
        assert np.abs(got - ref).max() <= 1e-4
    features = []
    net.features.register_forward_hook(lambda _m, _i, out: features.append(out.clone()))
    with torch.no_grad():
        net.eval()(torch.from_numpy(train_crops))
        net.train()
        for m in net.modules():
            if isinstance(m, torch.nn.Dropout2d):
                m.eval()
        net(torch.from_numpy(train_crops))
    torch.testing.assert_close(features[1], features[0], atol=1e-3, rtol=1e-3)


def test_init_from_an_onnx_model(run, onnx_model, dataset, tmp_path):
    from moodlens.train.from_onnx import net_from_onnx

    cfg = replace(TINY, epochs=1, lr=0.0, init_from=str(onnx_model[0]))
    again = torch.load(train(cfg, dataset, tmp_path / "again"), weights_only=False)["model"]
    start = net_from_onnx(onnx_model[0], _crops(dataset.split("Training").images[:64]))[0].state_dict()
    convs = [k for k in start if k.endswith("weight") and start[k].ndim == 4]
    assert convs and all(torch.equal(start[k], again[k]) for k in convs)
    with pytest.raises(ValueError, match="widths"):
        train(replace(cfg, widths=(16, 48)), dataset, tmp_path / "other")


def _shuffled_training_labels(dataset):
    """The dataset with its Training labels permuted: nothing left to learn from the labels alone."""
    labels = dataset.labels.copy()
    train_rows = np.flatnonzero(dataset.splits == "Training")
    labels[train_rows] = np.random.default_rng(0).permutation(labels[train_rows])
    return replace(dataset, labels=labels)


@pytest.mark.parametrize("kind", ["checkpoint", "onnx"])
def test_distillation_learns_from_the_teacher_not_the_labels(kind, run, onnx_model, dataset, tmp_path):
    """With the labels scrambled, a student distilled from the trained net (its checkpoint, or its ONNX
    export scored once on the unaugmented faces) still learns the real patterns (the teacher is all
    it has); the same student without the teacher stays near chance."""
    scrambled = _shuffled_training_labels(dataset)
    val = dataset.split("PublicTest")
    teacher = str(run / "final.pt") if kind == "checkpoint" else str(onnx_model[0])
    accuracy = {}
    for weight in (0.0, 1.0):
        cfg = replace(TINY, epochs=3, teachers=(teacher,), distill_weight=weight)
        final = train(cfg, scrambled, tmp_path / f"w{weight}")
        net = EmotionNet(widths=cfg.widths, dropout=cfg.dropout)
        net.load_state_dict(torch.load(final, weights_only=False)["model"])
        accuracy[weight] = float((predict_probs(net, val.images, "cpu").argmax(1) == val.labels).mean())
    assert accuracy[1.0] > 0.5 > accuracy[0.0] + 0.2, accuracy
    if kind == "onnx":  # scored once, cached with the teacher's name for a resumed run
        with np.load(tmp_path / "w1.0" / "teacher_probs.npz") as cache:
            assert list(cache["teachers"]) == [teacher]
            assert cache["probs"].shape == (len(scrambled.split("Training")), 7)


def test_time_budget_lowers_the_epoch_count_and_records_it(dataset, tmp_path):
    cfg = replace(TINY, epochs=50)
    train(cfg, dataset, tmp_path / "short", time_budget_s=1e-3)  # nothing fits: one epoch
    assert json.loads((tmp_path / "short" / "config.json").read_text())["epochs"] == 1
    budget = json.loads((tmp_path / "short" / "budget.json").read_text())
    assert budget["epochs"] == 1 and budget["epoch_s_estimate"] > 0
    train(replace(TINY, epochs=1), dataset, tmp_path / "ample", time_budget_s=1e6)  # never more than asked
    assert json.loads((tmp_path / "ample" / "config.json").read_text())["epochs"] == 1


def test_training_on_joined_splits_never_scores_on_them(dataset, tmp_path):
    joined = dataset.split("training+PublicTest")
    assert len(joined) == len(dataset.split("Training")) + len(dataset.split("PublicTest"))
    train(replace(TINY, epochs=1, train_split="Training+PublicTest"), dataset, tmp_path)
    info = json.loads((tmp_path / "data.json").read_text())
    assert info["n_train"] == len(joined) and info["val_split"] is None
    assert "val_acc" not in (tmp_path / "metrics.csv").read_text().splitlines()[0]


def test_export_parity_on_real_batch(run, dataset, onnx_model):
    path, card = onnx_model
    faces = dataset.split("PublicTest").images
    assert card.parity.parity_n == len(faces) and card.parity.parity_max_abs_diff <= PARITY_TOLERANCE
    # Independently: the runtime classifier (ORT, numpy preprocessing) vs the torch model (torch preprocessing).
    net, _ = load_checkpoint(run / "final.pt")
    with torch.no_grad():
        ref = ProbabilityModel(net).eval()(center_crop(torch.from_numpy(faces).float().unsqueeze(1))).numpy()
    got = EmotionClassifier(path).predict(faces)
    assert got.shape == (len(faces), len(EMOTIONS))
    assert np.abs(got - ref).max() <= 1e-4
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    # ... and the probabilities training reports on (predict_probs, flip averaging) are the same numbers.
    assert np.abs(predict_probs(net, faces, "cpu") - got).max() <= 1e-4


def test_ensemble_export_averages_its_members(run, dataset, tmp_path):
    """Two checkpoints -> one graph whose probabilities are the mean of each member's."""
    other = train(replace(TINY, epochs=1, seed=1), dataset, tmp_path / "other")
    faces = dataset.split("PublicTest").images
    card = export_onnx([run / "final.pt", other], tmp_path / "ens.onnx", parity_faces=faces)
    assert card.parity.parity_max_abs_diff <= PARITY_TOLERANCE
    single = []
    for i, checkpoint in enumerate([run / "final.pt", other]):
        export_onnx(checkpoint, tmp_path / f"m{i}.onnx", parity_faces=faces)
        single.append(EmotionClassifier(tmp_path / f"m{i}.onnx").predict(faces))
    ens = EmotionClassifier(tmp_path / "ens.onnx")
    np.testing.assert_allclose(ens.predict(faces), (single[0] + single[1]) / 2, atol=1e-5)
    assert [net.checkpoint for net in ens.card.training.nets] == [str(run / "final.pt"), str(other)]
    assert ens.card.params == 2 * ens.card.training.nets[0].params
    assert not np.allclose(single[0], single[1], atol=1e-3)  # the members really differ


def test_int8_export_agrees_with_float_model(run, dataset, onnx_model, tmp_path):
    """int8 moves a few borderline faces of this barely trained tiny net (the shipped model: see its card)."""
    faces, calib = dataset.split("PublicTest").images, dataset.split("Training").images[:64]
    with pytest.raises(RuntimeError, match="agrees with the float model on only"):
        export_onnx(run / "final.pt", tmp_path / "q.onnx", parity_faces=faces, calibration_faces=calib,
                    int8_min_agreement=1.01)
    assert not (tmp_path / "q.onnx").exists()
    card = export_onnx(run / "final.pt", tmp_path / "q.onnx", parity_faces=faces, calibration_faces=calib,
                       int8_min_agreement=0.9)
    q = card.parity.int8
    assert q.n == len(faces) and q.calibration_n == 64 and q.top1_agreement >= 0.9
    assert not (tmp_path / "q.float.onnx").exists()  # the float intermediate is cleaned up
    clf = EmotionClassifier(tmp_path / "q.onnx")
    assert clf.card.precision == "int8" and clf.sha256 == file_sha256(tmp_path / "q.onnx")
    onnx = pytest.importorskip("onnx")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    ref = EmotionClassifier(onnx_model[0]).predict(faces)
    got = clf.predict(faces)
    assert (ref.argmax(1) == got.argmax(1)).mean() == q.top1_agreement
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-4)


def test_export_writes_the_card(run, onnx_model):
    path, card = onnx_model
    assert ModelCard.load(path.with_suffix(".json")) == card == EmotionClassifier(path).card
    assert card.classes == EMOTIONS and card.tta == "horizontal flip average" and card.precision == "float32"
    assert card.name == "tiny" and card.sha256 == file_sha256(path) and not card.metrics
    net = card.training.nets[0]
    assert net.config == TINY and net.checkpoint == str(run / "final.pt") and net.epochs_total == TINY.epochs
    ck = torch.load(run / "final.pt", weights_only=False)
    assert net.params == sum(p.numel() for p in EmotionNet(widths=TINY.widths).parameters())
    assert net.train_minutes == round(ck["elapsed_s"] / 60, 1) and net.machines and net.devices == ("cpu",)


def test_evaluate_report_is_consistent(onnx_model, synthetic_fer_csv_gz, tmp_path):
    path, _ = onnx_model
    report = evaluate(synthetic_fer_csv_gz, model=path, split="PublicTest", out=tmp_path / "eval",
                      json_file=tmp_path / "copy.json")
    for name in ("report.json", "classification_report.txt", "confusion_matrix.png", "correct_examples.png",
                 "wrong_examples.png", "reliability.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 0, name
    written = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert json.loads((tmp_path / "copy.json").read_text()) == written

    cm = np.array(report["confusion_matrix"])
    assert report["n"] == cm.sum() == 70 and cm.shape == (7, 7)
    assert report["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert report["accuracy"] > 0.5  # learnable patterns, same threshold as during training
    assert list(report["per_class"]) == list(EMOTIONS)
    for k, name in enumerate(EMOTIONS):
        stats = report["per_class"][name]
        assert stats["support"] == cm[k].sum() == 10
        assert stats["recall"] == pytest.approx(cm[k, k] / cm[k].sum()) == report["per_class_recall"][name]
        assert stats["precision"] == pytest.approx(cm[k, k] / cm[:, k].sum() if cm[:, k].sum() else 0.0)
    assert report["macro_f1"] == pytest.approx(np.mean([s["f1"] for s in report["per_class"].values()]))
    assert 0.0 <= report["ece"] <= 1.0 and report["ece_bins"] == 15
    assert report["skipped_bad"]["count"] == 0 and report["split"] == "PublicTest"
    fit = report["temperature_fit"]  # the fitted temperature minimises the log-loss: never worse than T = 1
    assert fit["temperature"] > 0 and fit["nll"] <= report["nll"] + 1e-6 and 0.0 <= fit["ece"] <= 1.0


def test_ece_on_known_cases():
    labels = np.array([0, 1, 2, 3])
    sure = np.eye(7)[labels]
    assert expected_calibration_error(sure, labels) == 0.0  # confident and right
    assert expected_calibration_error(sure, (labels + 1) % 7) == 1.0  # confident and wrong
    p = np.full((4, 7), 0.1 / 6)
    p[:, 0] = 0.9  # 90 % sure of class 0, right half the time
    assert expected_calibration_error(p, np.array([0, 0, 1, 1])) == pytest.approx(0.4)
    # Two bins: 0.9-confident (right 1/2) and 0.5-confident (right 1/2): |0.5-0.9|/2 + |0.5-0.5|/2
    q = np.full((4, 7), 0.5 / 6)
    q[:, 1] = 0.5
    both = np.concatenate([p, q])
    assert expected_calibration_error(both, np.array([0, 0, 1, 1, 1, 1, 0, 0])) == pytest.approx(0.2)


def test_temperature_fit_softens_overconfident_probabilities():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.0, (4000, 7))
    p_true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(7, p=row) for row in p_true])  # labels drawn from calibrated p_true
    over = apply_temperature(p_true, 1 / 3)  # 3x sharper than the truth
    t = fit_temperature(over, labels)
    assert 2.5 < t < 3.6
    assert np.array_equal(apply_temperature(over, t).argmax(1), over.argmax(1))
    before = compute_metrics(labels, over)
    after = compute_metrics(labels, apply_temperature(over, t))
    assert after["nll"] < before["nll"] and after["ece"] < before["ece"]


def test_center_crop_and_runtime_preprocessing_are_identical():
    faces = np.random.default_rng(1).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    runtime = to_model_input(faces)
    training = center_crop(torch.from_numpy(faces).float().unsqueeze(1)).numpy()
    assert runtime.dtype == training.dtype == np.float32
    np.testing.assert_array_equal(runtime, training)


def _emotion_lists_in_python(path: Path) -> list[int]:
    """Line numbers of list/tuple/set/dict literals naming three or more emotions."""
    hits = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict) and items:
            names = {i.value.lower() for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}
            if len(names & set(EMOTIONS)) >= 3:
                hits.append(node.lineno)
    return hits


def test_emotions_is_the_only_list_of_class_names():
    """Class names are listed once, in spec.py; everything else reads spec.EMOTIONS."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name != "spec.py":
            offenders += [f"{path.relative_to(SRC)}:{line}" for line in _emotion_lists_in_python(path)]
    quoted = re.compile("[\"'](" + "|".join(EMOTIONS) + ")[\"']", re.IGNORECASE)
    for path in sorted(p for p in SRC.rglob("*") if p.suffix in {".js", ".ts", ".html", ".jinja", ".j2"}):
        for array in re.findall(r"\[[^\[\]]*\]", path.read_text(errors="replace")):
            if len({m.lower() for m in quoted.findall(array)}) >= 3:
                offenders.append(f"{path.relative_to(SRC)}: {array[:60]}")
    assert not offenders, f"class names listed outside spec.py (use moodlens.spec.EMOTIONS): {offenders}"
    # The checker itself finds a list when there is one.
    assert _emotion_lists_in_python(SRC / "spec.py")
