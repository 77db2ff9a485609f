"""``vidshield serve``: the scanning service (HTTP API + page) on uvicorn."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import (
    allow_mismatch_option,
    comdefend_option,
    device_option,
    input_spec_option,
    options,
    resolve_device,
)
from vidshield.errors import VidshieldError
from vidshield.names import DEFAULT_MODEL

#: Longest API key file read (bytes).
_MAX_KEY_BYTES = 4096


def _named(values: tuple[str, ...], option: str, *, need_ref: bool) -> dict[str, str]:
    """``NAME`` or ``NAME=REF`` values -> {name: ref}."""
    out = {}
    for v in values:
        name, sep, ref = v.partition("=")
        if not name or (need_ref and not ref) or (sep and not ref):
            form = "NAME=PATH" if need_ref else "NAME or NAME=REF"
            raise click.BadParameter(f"expected {form}, got {v!r}", param_hint=option)
        out[name] = ref or name
    return out


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("vidshield-serve"),
    show_default=True,
    help="Folder for the job database, uploads and results (kept across restarts).",
)
@click.option("--workers", type=click.IntRange(0, 64), default=1, show_default=True, help="Worker processes.")
@click.option("--queue-size", type=click.IntRange(1), default=16, show_default=True, help="Queued jobs at most (429).")
@click.option(
    "--job-timeout", type=click.FloatRange(min=1), default=600, show_default=True, help="Seconds per job at most."
)
@click.option("--max-upload-mb", type=click.FloatRange(min=0.001), default=200, show_default=True, help="413 above.")
@click.option("--max-side", type=click.IntRange(16), default=4096, show_default=True, help="Largest frame side.")
@click.option("--max-frames", type=click.IntRange(3), default=20_000, show_default=True, help="Longest video.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help="torch threads per worker.")
@click.option(
    "--api-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="File holding the API key; /v1 requests then need it in the X-API-Key header.",
)
@click.option("--cors-origin", multiple=True, help="Allow this origin by CORS (repeatable; default: CORS off).")
@click.option(
    "--model",
    "models",
    multiple=True,
    default=(DEFAULT_MODEL,),
    show_default=True,
    help="Detection network clients may pick: NAME (shipped) or NAME=CHECKPOINT (repeatable; the first is the "
    "default). A job that picks no --config runs a shipped model with the config shipped beside it, as `scan` does.",
)
@click.option("--config", "configs", multiple=True, help="Detector config clients may pick: NAME=detector.json.")
@click.option(
    "--classifier",
    default=None,
    help="Classifier to protect: NAME (shipped) or NAME=REF, REF a checkpoint or a TorchScript .pt [default: the "
    "classifier a distilled detector serves, else the detection network itself].",
)
@options(input_spec_option, allow_mismatch_option, comdefend_option, device_option)
def command(
    host,
    port,
    data_dir,
    workers,
    queue_size,
    job_timeout,
    max_upload_mb,
    max_side,
    max_frames,
    threads,
    api_key_file,
    cors_origin,
    models,
    configs,
    classifier,
    input_spec,
    allow_mismatch,
    comdefend,
    device,
):
    """Run the scanning service: upload a video, get the verdict, the frames and the defended video.

    The API is under /v1 (docs at /docs), the page at /, health at /healthz, Prometheus metrics at
    /metrics. Jobs and results live in --data and survive a restart. See docs/serve.md.

    \b
    Examples:
      vidshield serve                                   # http://127.0.0.1:8000, one worker
      vidshield serve --workers 2 --max-upload-mb 500 --api-key-file key.txt
      vidshield serve --model ut=ut-lrcn --config ut=runs/calib/detector.json --classifier ut-c3d
    """
    try:
        import uvicorn

        from vidshield.serve import ScanSettings, ServeConfig, create_app
    except ImportError as e:
        raise VidshieldError(f"the serve extra is not installed ({e}): pip install 'vidshield[serve]'") from e
    from vidshield.serve.scanning import check_settings

    model_refs = _named(models, "--model", need_ref=False)
    config_refs = _named(configs, "--config", need_ref=True)
    for name, path in config_refs.items():
        if not Path(path).is_file():
            raise click.BadParameter(f"{name}: no file {path}", param_hint="--config")
        config_refs[name] = str(Path(path).resolve())
    cls = None
    if classifier:
        ((cname, cref),) = _named((classifier,), "--classifier", need_ref=False).items()
        cls = (cname, cref)
    if input_spec is not None and Path(input_spec).is_file():
        input_spec = str(Path(input_spec).resolve())
    api_key = _read_api_key(api_key_file) if api_key_file is not None else None
    settings = ScanSettings(
        models=model_refs,
        configs=config_refs,
        classifier=cls,
        input_spec=input_spec,
        allow_mismatch=allow_mismatch,
        comdefend=comdefend,
        device=str(resolve_device(device)),
    )
    check_settings(settings)  # fail now, not in every job
    config = ServeConfig(
        data_dir=data_dir.resolve(),
        workers=workers,
        queue_size=queue_size,
        job_timeout=job_timeout,
        threads=threads,
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        max_side=max_side,
        max_frames=max_frames,
        api_key=api_key,
        cors_origins=tuple(cors_origin),
        settings=settings,
    )
    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        click.secho(f"warning: serving on {host} without --api-key-file: anyone who can reach it can upload", err=True)
    click.echo(f"vidshield serve: http://{host}:{port}/ (data in {config.data_dir}, {workers} worker(s))", err=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", access_log=False)
    return 0


def _read_api_key(path: Path) -> str:
    """The key in ``path``: a regular file of at most 4 KiB, one line of UTF-8 text."""
    import os
    import stat

    from vidshield.text import printable

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise VidshieldError(f"{printable(path)} is not a regular file: put the API key in one")
        with open(path, "rb") as f:
            data = f.read(_MAX_KEY_BYTES + 1)
    except OSError as e:
        raise VidshieldError(f"cannot read {printable(path)}: {e.strerror or e}") from None
    if len(data) > _MAX_KEY_BYTES:
        raise VidshieldError(f"{printable(path)} is longer than {_MAX_KEY_BYTES} bytes: put only the API key in it")
    try:
        key = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise VidshieldError(f"{printable(path)} is not UTF-8 text") from None
    if not key:
        raise VidshieldError(f"{printable(path)} is empty: put the API key in it")
    return key
