"""Model commands: ``data explore``, ``data pack``, ``train``, ``evaluate``, ``export``, ``release``.

Each option is a keyword of the library call it makes (``explore``, ``save_packed``, ``TrainConfig``/``train``,
``evaluate``, ``export_onnx``, ``release``) with the same default. torch is imported only inside ``train``,
``export`` and ``release`` (the ``train`` extra), scikit-learn only inside ``evaluate`` (the ``data`` extra),
so the rest of the CLI works on the core install.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from moodlens.cli.errors import require_extra, user_errors
from moodlens.cli.options import ModelOpt
from moodlens.dataset.readers import DataError
from moodlens.train.config import BALANCING, TrainConfig

_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.name != "augment"}

DataOpt = Annotated[Path, typer.Option("--data", help="FER2013 CSV (.csv/.csv.gz) or image-folder root.")]
SkipBadOpt = Annotated[bool, typer.Option("--skip-bad", help="Skip bad rows/files and count them in the report "
                                                             "instead of stopping at the first one.")]


# Bad input (data, paths, options) becomes one clear line and exit code 1, not a traceback.
_user_errors = user_errors(DataError, FileNotFoundError, ValueError, RuntimeError)


def _report_skipped(skipped: dict[str, Any]) -> None:
    if skipped["count"]:
        typer.secho(f"skipped {skipped['count']} bad row(s)/file(s); first: {skipped['first'][0]}",
                    fg=typer.colors.YELLOW, err=True)


@_user_errors
def data_explore(
    data: DataOpt,
    out: Annotated[Path, typer.Option(help="Folder for the table, charts, sample grid and summary.json.")],
    skip_bad: SkipBadOpt = False,
    samples_per_class: Annotated[int, typer.Option(help="Faces shown per class in sample_faces.png.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the random sample of faces.")] = 0,
) -> None:
    """Class counts per split (table + bar chart), sample faces per class, summary JSON."""
    from moodlens.dataset.explore import class_count_table, explore

    summary = explore(data, out, skip_bad=skip_bad, samples_per_class=samples_per_class, seed=seed)
    typer.echo(class_count_table({s: v["counts"] for s, v in summary["splits"].items()}))
    dup = summary["duplicates"]
    typer.echo(f"exact duplicates: within splits {dup['within_split']}, shared between splits "
               f"{dup['across_splits_unique_faces']}, groups with conflicting labels "
               f"{dup['groups_with_conflicting_labels']}")
    _report_skipped(summary["skipped_bad"])
    typer.echo(f"wrote {out}/class_counts.md, class_counts.png, sample_faces.png, summary.json")


@_user_errors
def train_cmd(
    data: DataOpt,
    out: Annotated[Path, typer.Option(help="Run folder: last.pt (every epoch), final.pt, metrics.csv, curves.png.")],
    resume: Annotated[bool, typer.Option(help="Continue from RUN_DIR/last.pt with the same recipe.")] = False,
    stop_after_epoch: Annotated[int | None, typer.Option(help="Stop after this epoch (the schedule still spans "
                                                               "--epochs); continue later with --resume.")] = None,
    epochs: int = _DEFAULTS["epochs"],
    batch_size: int = _DEFAULTS["batch_size"],
    lr: Annotated[float, typer.Option(help="Peak learning rate of the one-cycle schedule.")] = _DEFAULTS["lr"],
    momentum: float = _DEFAULTS["momentum"],
    weight_decay: float = _DEFAULTS["weight_decay"],
    label_smoothing: float = _DEFAULTS["label_smoothing"],
    warmup_frac: float = _DEFAULTS["warmup_frac"],
    ema_decay: float = _DEFAULTS["ema_decay"],
    balance: Annotated[str, typer.Option(help=f"Class balancing on the training split: {', '.join(BALANCING)}.")]
    = _DEFAULTS["balance"],
    widths: Annotated[str, typer.Option(help="Channels per conv stage, comma-separated.")]
    = ",".join(map(str, _DEFAULTS["widths"])),
    convs_per_stage: int = _DEFAULTS["convs_per_stage"],
    dropout: float = _DEFAULTS["dropout"],
    train_split: str = _DEFAULTS["train_split"],
    val_split: Annotated[str, typer.Option(help="Split scored after each epoch (skipped if absent).")]
    = _DEFAULTS["val_split"],
    seed: int = _DEFAULTS["seed"],
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = _DEFAULTS["device"],
    threads: Annotated[int, typer.Option(help="PyTorch CPU threads (0: PyTorch's default).")] = _DEFAULTS["threads"],
    init_from: Annotated[str | None, typer.Option(help="Start from an earlier run's final.pt weights, or from a "
                                                      "single-net ONNX model (a shipped name such as 'default', "
                                                      "or an .onnx path with its .json card); fresh schedule, "
                                                      "optimiser and EMA.")] = None,
    teacher: Annotated[list[str] | None, typer.Option(help="Distil from this run's final.pt, or from an ONNX model "
                                                           "(a shipped name such as 'accurate', or an .onnx path; "
                                                           "scored once on the unaugmented faces). Repeat for an "
                                                           "ensemble of teachers.")] = None,
    distill_weight: Annotated[float, typer.Option(help="Share of the loss given to the teachers' soft targets.")]
    = _DEFAULTS["distill_weight"],
    distill_temperature: float = _DEFAULTS["distill_temperature"],
    time_budget: Annotated[float | None, typer.Option(help="Seconds available: lower --epochs to what fits, "
                                                           "timed on this machine first.")] = None,
    skip_bad: SkipBadOpt = False,
) -> None:
    """Train the emotion CNN with the default recipe (or the options given); checkpoint every epoch."""
    require_extra("torch", "train", "train")
    from moodlens.dataset.readers import load_dataset
    from moodlens.recognition.classifier import shipped_models
    from moodlens.train.loop import train

    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {device!r}")
    try:
        width_tuple = tuple(int(w) for w in widths.split(","))
    except ValueError:
        raise ValueError(f"--widths must be comma-separated integers, got {widths!r}") from None
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
                      label_smoothing=label_smoothing, warmup_frac=warmup_frac, ema_decay=ema_decay, balance=balance,
                      widths=width_tuple, convs_per_stage=convs_per_stage, dropout=dropout,
                      train_split=train_split, val_split=val_split, seed=seed, device=device, threads=threads,
                      init_from=init_from, teachers=tuple(teacher or ()), distill_weight=distill_weight,
                      distill_temperature=distill_temperature)
    shipped = shipped_models()  # a teacher or --init-from may be a shipped model's name
    for path in (*(teacher or ()), *([init_from] if init_from else [])):
        if path not in shipped and not Path(path).is_file():  # checked before the slow data load
            raise FileNotFoundError(f"no checkpoint at {path} (--teacher/--init-from take a run's final.pt, "
                                    f"an .onnx file or one of: {', '.join(shipped)})")
    dataset = load_dataset(data, skip_bad=skip_bad, progress=True)
    result = train(cfg, dataset, out, resume=resume, stop_after_epoch=stop_after_epoch, time_budget_s=time_budget)
    if dataset.skipped:
        _report_skipped({"count": len(dataset.skipped), "first": dataset.skipped})
    typer.echo(f"wrote {result}; metrics in {out}/metrics.csv, curves in {out}/curves.png")


@_user_errors
def evaluate_cmd(
    data: DataOpt,
    out: Annotated[Path, typer.Option(help="Folder for report.json, confusion matrix and example grids.")],
    model: ModelOpt = "default",
    split: Annotated[str, typer.Option(help="Split to score: PublicTest, PrivateTest, Training "
                                            "(or a folder name such as test).")] = "PublicTest",
    json_file: Annotated[Path | None, typer.Option("--json", "--json-file",
                                                   help="Also write the JSON report here.")] = None,
    skip_bad: SkipBadOpt = False,
    examples_per_class: Annotated[int, typer.Option(help="Faces per class in the example grids.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the random choice of example faces.")] = 0,
) -> None:
    """Accuracy, per-class precision/recall/F1, macro-F1, calibration, confusion matrix, example grids."""
    require_extra("sklearn", "evaluate", "data")
    from moodlens.dataset.evaluate import evaluate

    report = evaluate(data, model=model, split=split, out=out, json_file=json_file, skip_bad=skip_bad,
                      examples_per_class=examples_per_class, seed=seed)
    typer.echo((Path(out) / "classification_report.txt").read_text())
    typer.echo(f"{report['model_name']} on {report['split']} (n={report['n']}): accuracy {report['accuracy']:.4f}, "
               f"macro-F1 {report['macro_f1']:.4f}, ECE({report['ece_bins']} bins) {report['ece']:.4f}")
    _report_skipped(report["skipped_bad"])
    typer.echo(f"wrote {out}/report.json, confusion_matrix.png, reliability.png, correct_examples.png, "
               "wrong_examples.png"
               + (f" and {json_file}" if json_file else ""))


@_user_errors
def export_cmd(
    checkpoint: Annotated[list[Path], typer.Option(help="RUN_DIR/final.pt (or last.pt: its EMA weights); repeat "
                                                        "the option to export an ensemble of runs.")],
    out: Annotated[Path, typer.Option(help="ONNX file to write; metadata goes beside it as .json.")],
    data: Annotated[Path | None, typer.Option(help="Dataset whose real faces feed the ONNX-vs-PyTorch parity "
                                                   "check (random faces if omitted).")] = None,
    split: Annotated[str, typer.Option(help="Split of --data used for the parity batch.")] = "PublicTest",
    parity_n: Annotated[int, typer.Option(help="Faces in the parity batch.")] = 256,
    flip_tta: Annotated[bool, typer.Option(help="Average each face with its mirror image inside the graph.")] = True,
    int8: Annotated[bool, typer.Option(help="Quantise to int8 (about 2.5x faster on CPUs with VNNI), calibrated "
                                            "on --calibration-n faces of the Training split of --data.")] = False,
    calibration_n: Annotated[int, typer.Option(help="Training faces used to calibrate --int8.")] = 512,
    skip_bad: SkipBadOpt = False,
) -> None:
    """Export a checkpoint (or an ensemble) to ONNX and check it against PyTorch (max |dp| <= 1e-4)."""
    require_extra("torch", "export", "train")
    from moodlens.dataset.readers import load_dataset
    from moodlens.train.export import calibration_sample, export_onnx

    for c in checkpoint:
        if not c.is_file():
            raise FileNotFoundError(f"checkpoint not found: {c}")
    if int8 and data is None:
        raise ValueError("--int8 needs --data: its Training faces calibrate the quantisation")
    faces = calib = None
    if data is not None:
        dataset = load_dataset(data, skip_bad=skip_bad, progress=True)
        faces = dataset.split(split).images[:parity_n]
        if int8:
            calib = calibration_sample(dataset.split("Training").images, calibration_n)
    card = export_onnx(list(checkpoint), out, flip_tta=flip_tta, parity_faces=faces, calibration_faces=calib)
    check = card.parity
    source = f"{len(faces)} real {split} faces" if faces is not None else f"{check.parity_n} random faces"
    typer.echo(f"wrote {out} and its card {Path(out).with_suffix('.json')}; parity on {source}: "
               f"max |p_onnx - p_torch| = {check.parity_max_abs_diff:.2e} (tolerance {check.tolerance})")
    if check.int8:
        q = check.int8
        typer.echo(f"int8: top-1 agreement with the float model {q.top1_agreement:.2%} on {q.n} faces, "
                   f"max |dp| {q.max_abs_diff:.3f} (calibrated on {q.calibration_n} Training faces)")


@_user_errors
def data_pack(
    data: DataOpt,
    out: Annotated[Path, typer.Option(help="The packed file to write (.npz.xz).")],
    skip_bad: SkipBadOpt = False,
) -> None:
    """Pack a dataset into one compact .npz.xz (about 57 MB for FER2013) to carry to a training machine;
    `moodlens train --data` reads it."""
    from moodlens.dataset.readers import load_dataset, save_packed

    dataset = load_dataset(data, skip_bad=skip_bad, progress=True)
    path = save_packed(dataset, out)
    _report_skipped({"count": len(dataset.skipped), "first": dataset.skipped})
    typer.echo(f"wrote {path}: {len(dataset):,} faces, {path.stat().st_size / 2**20:.1f} MiB")


@_user_errors
def release_cmd(
    target: Annotated[str, typer.Option(help="Shipped model name to write: default, accurate, ...")] = "default",
    run: Annotated[list[Path] | None, typer.Option(help="Run folder with final.pt; repeat for an ensemble.")] = None,
    data: Annotated[Path | None, typer.Option(help="FER2013 with Training and PublicTest (parity, int8 "
                                                   "calibration, evaluation).")] = None,
    command: Annotated[list[str] | None, typer.Option(help="The exact commands that trained the runs, in order "
                                                           "(repeatable); they go on the card.")] = None,
    name: Annotated[str | None, typer.Option(help="The model's name on its card.")] = None,
    int8: Annotated[bool, typer.Option(help="Quantise to int8 (calibrated on Training faces).")] = False,
    flip_tta: Annotated[bool, typer.Option(help="Average each face with its mirror image inside the graph.")] = True,
    notes: Annotated[str, typer.Option(help="How the model was made, in words, for the card.")] = "",
    models: Annotated[Path | None, typer.Option(help="Folder of the shipped models (default: the package's).")]
    = None,
    docs: Annotated[Path, typer.Option(help="Repository root: MODEL_CARD.md / docs/model/TARGET.md and the "
                                            "PublicTest figures are written below it.")] = Path("."),
    retime: Annotated[bool, typer.Option(help="Only measure the shipped TARGET's speed again on this machine "
                                              "and rewrite its cards.")] = False,
) -> None:
    """Ship runs as a named model: export + parity, evaluate on PublicTest, time, write the JSON and Markdown cards."""
    require_extra("torch", "release", "train")
    from moodlens.train import release

    if retime:
        card = release.retime(target, models=models, docs=docs)
    else:
        missing = [opt for opt, value in (("--run", run), ("--data", data), ("--command", command), ("--name", name))
                   if not value]
        if missing:
            raise ValueError(f"moodlens release needs {', '.join(missing)} (or --retime)")
        card = release.release(list(run), data, list(command), name=name, target=target, int8=int8,
                               flip_tta=flip_tta, notes=notes, models=models, docs=docs)
    test = card.split("PublicTest")
    typer.echo(f"{card.name} ({card.version}) as {target}: "
               + (f"PublicTest accuracy {test.accuracy:.4f}, macro-F1 {test.macro_f1:.4f}; " if test else "")
               + f"{card.speed.onnxruntime_faces_per_s_batch64:,} faces/s at batch 64 on {card.speed.machine}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    data_app = typer.Typer(help="Look at and pack FER2013 datasets.", no_args_is_help=True)
    data_app.command("explore")(data_explore)
    data_app.command("pack")(data_pack)
    app.add_typer(data_app, name="data")
    app.command("train")(train_cmd)
    app.command("evaluate")(evaluate_cmd)
    app.command("export")(export_cmd)
    app.command("release")(release_cmd)
