"""``vidshield scan-corpus``: scan every video of a folder or list into one Parquet / JSON-lines table."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import echo_json, json_option, pipeline_options, resolve_device


@click.command("scan-corpus")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Result table: .parquet (needs pyarrow) or .jsonl. An existing one is resumed.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: worker processes on this machine; ray: a Ray cluster (needs the distributed extra).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (local) or pipeline actors (Ray); each loads the models once.",
)
@click.option(
    "--address",
    default=None,
    help="Ray: join this cluster (`auto`: the one this machine belongs to) [default: start a local Ray].",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Ray: videos per actor call."
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=None,
    help="Ray: videos decoding, decoded or being scanned at once (bounds memory) [default: 3 x workers x batch].",
)
@click.option(
    "--cpus-per-worker", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Ray: CPUs per actor."
)
@click.option(
    "--gpus-per-worker",
    type=click.FloatRange(min=0),
    default=None,
    help="Ray: GPUs per actor [default: 1 with --device cuda, else 0].",
)
@click.option("--max-frames", type=click.IntRange(min=3), default=None, help="Scan at most this many frames per video.")
@click.option("--retry-errors", is_flag=True, help="Rescan videos whose stored row has an error.")
@pipeline_options
@json_option
def command(
    source,
    out,
    engine,
    workers,
    address,
    batch_size,
    max_in_flight,
    cpus_per_worker,
    gpus_per_worker,
    max_frames,
    retry_errors,
    model_ref,
    classifier_ref,
    input_spec,
    allow_mismatch,
    config,
    comdefend,
    qp,
    polluted,
    squeeze_check,
    vote,
    device,
    as_json,
):
    """Scan every video of SOURCE (a folder, searched recursively, or a text file of paths) and
    write one row per video to OUT: path, size, content hash, verdict, alpha, exception frames,
    labels before / after defense, time, error.

    A rerun skips the videos whose row exists with the same content hash and settings; a video
    that cannot be scanned gets a row with its error; a worker lost mid-run loses only the
    videos it held, which are retried. Both engines give the same rows.

    \b
    Examples:
      vidshield scan-corpus videos/ --out scan.parquet --workers 4
      vidshield scan-corpus list.txt --out scan.jsonl --engine ray --workers 8
      vidshield scan-corpus /data/uploads --out scan.parquet --engine ray --address auto \\
          --workers 16 --device cuda --batch-size 8
    """
    from vidshield.distributed.corpus import ScanSettings, scan_corpus
    from vidshield.text import printable
    from vidshield.utils import progress_bar

    if engine == "ray":  # the actors' device: this machine may have no GPU where the cluster has some
        if device == "auto":
            device = "cuda" if gpus_per_worker else "cpu"
        if gpus_per_worker is None:
            gpus_per_worker = 1.0 if device.startswith("cuda") else 0.0
    else:
        device = str(resolve_device(device))
    settings = ScanSettings(
        model=model_ref,
        classifier=classifier_ref,
        input_spec=input_spec,
        allow_mismatch=allow_mismatch,
        config=str(config) if config else None,
        comdefend=comdefend,
        qp=qp,
        polluted=polluted,
        squeeze_check=squeeze_check,
        vote=vote,
        max_frames=max_frames,
        device=device,
    )
    options = {}
    if engine == "ray":
        options = {
            "address": address,
            "batch_size": batch_size,
            "max_in_flight": max_in_flight,
            "cpus_per_worker": cpus_per_worker,
            "gpus_per_worker": gpus_per_worker,
        }
    with progress_bar(disable=as_json) as progress:
        task = progress.add_task("scan-corpus", total=None)

        def on_event(kind, info):
            if kind == "start":
                progress.update(task, total=info["videos"])
            elif kind in ("row", "skip"):
                progress.advance(task)

        report = scan_corpus(
            source,
            out,
            settings,
            engine=engine,
            workers=workers,
            retry_errors=retry_errors,
            on_event=on_event,
            **options,
        )
    if as_json:
        echo_json(report)
        return 0
    rate = report["scanned"] / report["seconds"] if report["seconds"] > 0 else 0.0
    click.echo(
        f"{report['videos']} videos: {report['scanned']} scanned ({report['errors']} with an error), "
        f"{report['skipped']} already done; {report['retried']} retried after {report['workers_lost']} lost worker(s)"
    )
    click.echo(
        f"{rate:.2f} videos/s, {report['frames'] / max(report['seconds'], 1e-9):.1f} frames/s; rows in {printable(out)}"
    )
    return 0
