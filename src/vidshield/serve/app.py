"""The HTTP service: FastAPI routers for scans, health, metrics and the page.

``create_app(ServeConfig(...))`` returns an ASGI app whose lifespan starts the job manager
(SQLite store, worker processes, supervisor) and stops it. Endpoints:

====================================== ======================================================
``POST /v1/scans``                     multipart upload (part ``file`` + option fields) -> 202
``GET /v1/scans``                      recent jobs
``GET /v1/scans/{id}``                 state, progress, and when done the scan report
``DELETE /v1/scans/{id}``              remove a job and its files -> 204
``GET /v1/scans/{id}/defended``        the defended video (FFV1 .mkv, model view)
``GET /v1/scans/{id}/labels.png``      the per-frame label plot
``GET /v1/scans/{id}/frames/{t}/{before|after}.png``  thumbnails of exception frames
``GET /healthz``, ``GET /metrics``     liveness, Prometheus text format
``GET /``, ``/docs``                   the page, the OpenAPI docs (no CDN)
====================================== ======================================================

Errors are JSON ``{"detail": "one line"}``: 401 missing or wrong ``X-API-Key`` (when a key is
set), 404 unknown job, 409 not finished yet, 413 upload too large, 415 not a video, 422 a video
that does not decode or bad options, 429 queue full (with ``Retry-After``), 500 a job row of the
database that does not hold what the service wrote (:class:`~vidshield.serve.jobs.StoreError`).
"""

from __future__ import annotations

import hmac
import re
import time
import warnings
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.concurrency import run_in_threadpool

from vidshield import __version__
from vidshield.pipeline import POLLUTED_RULES
from vidshield.serve.jobs import JobManager, ManagerConfig, QueueFull, StoreError, job_json, valid_job_id
from vidshield.serve.scanning import OptionsError, ScanOptions, ScanSettings
from vidshield.serve.upload import ClientGone, UploadError, receive_upload

__all__ = ["ServeConfig", "create_app", "check_upload"]

STATIC = Path(__file__).parent / "static"
_LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
# reasons from vidshield.io for files that are no video at all (415); other decode errors are 422
_NOT_VIDEO = ("not a video FFmpeg can read", "no video stream", "no video data", "file is empty")
_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True)
class ServeConfig:
    """The service's settings (``vidshield serve`` options).

    Attributes:
        data_dir: database, uploads and results.
        workers, queue_size, job_timeout, threads: see :class:`~vidshield.serve.jobs.ManagerConfig`.
        max_upload_bytes: larger uploads get 413.
        max_side: frames larger than this per side get 422 (bounds decoder memory).
        max_frames: videos longer than this get 422 (a scan keeps its windows in memory).
        api_key: when set, every ``/v1`` request needs it in ``X-API-Key``.
        cors_origins: origins allowed by CORS (empty: CORS off).
        settings: models and defenses (:class:`~vidshield.serve.scanning.ScanSettings`).
    """

    data_dir: Path
    workers: int = 1
    queue_size: int = 16
    job_timeout: float = 600.0
    threads: int = 1
    max_upload_bytes: int = 200 * 1024 * 1024
    max_side: int = 4096
    max_frames: int = 20_000
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    settings: ScanSettings = field(default_factory=ScanSettings)

    def manager_config(self) -> ManagerConfig:
        return ManagerConfig(
            data_dir=Path(self.data_dir),
            workers=self.workers,
            queue_size=self.queue_size,
            job_timeout=self.job_timeout,
            threads=self.threads,
            settings=self.settings,
        )


def check_upload(path: Path, *, max_side: int, max_frames: int, strict: bool = False) -> dict:
    """Check that an upload is a video the scan can read, before it is queued.

    Returns:
        ``{width, height, fps, num_frames, duration, codec}``.

    Raises:
        UploadError: 415 not a video at all, 422 a video that is damaged, too short (< 3 frames,
            detection needs two neighbours), too long or too large; the detail is the decoder's
            one-line reason.
    """
    from vidshield.errors import VideoDecodeError
    from vidshield.io import probe, read_frames

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = probe(path, strict=strict)
            if max(info.width, info.height) > max_side:
                raise UploadError(422, f"frame size {info.width}x{info.height} exceeds {max_side} pixels per side")
            if info.num_frames < 3:
                raise UploadError(422, f"{info.num_frames} frame(s); detection needs at least 3")
            if info.num_frames > max_frames:
                raise UploadError(422, f"{info.num_frames} frames; this service scans at most {max_frames}")
            read_frames(path, start=0, length=1, size=(16, 16))  # the decoder accepts the frame data
    except VideoDecodeError as e:
        status = 415 if e.reason.startswith(_NOT_VIDEO) else 422
        raise UploadError(status, e.reason) from None
    return {k: getattr(info, k) for k in ("width", "height", "fps", "num_frames", "duration", "codec", "truncated")}


class _Metrics:
    """Prometheus metrics: counters and a histogram fed by the service, gauges read from the
    store at each scrape."""

    def __init__(self, manager: JobManager):
        self.registry = CollectorRegistry()
        self.manager = manager
        self.latency = Histogram(
            "vidshield_job_latency_seconds",
            "Seconds from upload to finished report, per finished job.",
            ["state"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.frames = Counter(
            "vidshield_frames_scanned", "Frames scanned by finished jobs since start.", registry=self.registry
        )
        self.requests = Counter(
            "vidshield_http_requests", "HTTP responses by status code.", ["code"], registry=self.registry
        )
        self.rejected = Counter(
            "vidshield_uploads_rejected", "Uploads refused, by HTTP status.", ["code"], registry=self.registry
        )
        self.registry.register(self)

    def job_finished(self, job: dict) -> None:
        self.latency.labels(job["state"]).observe(job["finished"] - job["created"])
        if job["state"] == "done":
            self.frames.inc(job["frames_total"])

    def collect(self):
        store = self.manager.store
        jobs = GaugeMetricFamily("vidshield_jobs", "Jobs in the store by state.", labels=["state"])
        for state, n in store.counts().items():
            jobs.add_metric([state], n)
        yield jobs
        counts = store.counts()
        yield GaugeMetricFamily("vidshield_queue_depth", "Jobs waiting for a worker.", value=counts["queued"])
        yield GaugeMetricFamily(
            "vidshield_queue_capacity", "Most jobs the queue holds.", value=self.manager.config.queue_size
        )
        frames, seconds = store.throughput(300)
        yield GaugeMetricFamily(
            "vidshield_frames_per_second",
            "Frames per second of scanning, over the jobs done in the last 5 minutes (per worker).",
            value=frames / seconds if seconds > 0 else 0.0,
        )
        workers = self.manager.workers()
        yield GaugeMetricFamily(
            "vidshield_workers_ready",
            "Worker processes alive with their model loaded.",
            value=sum(w["alive"] and w["ready"] for w in workers),
        )


class _Middleware:
    """Pure ASGI: security headers on every response, the page's CSP, status counting."""

    def __init__(self, app, metrics_ref):
        self.app, self.metrics_ref = app, metrics_ref

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if not path.startswith("/docs"):
                    headers.append((b"content-security-policy", _CSP.encode()))
                message = {**message, "headers": headers}
                metrics = self.metrics_ref()
                if metrics is not None:
                    metrics.requests.labels(str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _job_view(job: dict) -> dict:
    """The JSON a client sees for one job (no server paths)."""
    base = f"/v1/scans/{job['id']}"
    view = {
        "id": job["id"],
        "state": job["state"],
        "name": job["name"],
        "created": job["created"],
        "started": job["started"],
        "finished": job["finished"],
        "attempts": job["attempts"],
        "progress": {"frames_done": job["frames_done"], "frames_total": job["frames_total"]},
        "options": job_json(job, "options"),
        "video": job_json(job, "info"),
        "error": job["error"],
        "note": job["note"],
        "links": {"self": base},
    }
    if job["state"] == "done":
        files = job_json(job, "files")
        view["report"] = job_json(job, "report")
        if files["labels"]:
            view["links"]["labels"] = f"{base}/labels.png"
        if files["defended"]:
            view["links"]["defended"] = f"{base}/defended"
        view["links"]["thumbnails"] = [
            {"frame": int(t), **{which: f"{base}/frames/{t}/{which}.png" for which in kinds}}
            for t, kinds in sorted(files["thumbnails"].items(), key=lambda kv: int(kv[0]))
        ]
    return view


def create_app(config: ServeConfig) -> FastAPIOffline:
    """The ASGI app for ``config`` (its lifespan runs the job manager)."""
    manager = JobManager(config.manager_config())
    state: dict = {"metrics": None}

    @asynccontextmanager
    async def lifespan(app):
        metrics = _Metrics(manager)
        manager._on_finished = metrics.job_finished
        state["metrics"] = metrics
        await run_in_threadpool(manager.start)
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)

    app = FastAPIOffline(
        title="vidshield",
        version=__version__,
        description="Upload a video; get the verdict (clean / sparse / dense attack), the exception index alpha, "
        "the per-frame labels and the defended video. See docs/serve.md.",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.manager = manager
    app.state.config = config

    @app.exception_handler(StoreError)
    async def damaged_row(request: Request, e: StoreError):
        return JSONResponse({"detail": str(e)}, status_code=500)

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type"],
        )
    app.add_middleware(_Middleware, metrics_ref=lambda: state["metrics"])

    def require_key(request: Request) -> None:
        if config.api_key is None:
            return
        given = request.headers.get("x-api-key", "").encode()
        if not hmac.compare_digest(given, config.api_key.encode()):
            raise HTTPException(401, "missing or wrong X-API-Key", headers={"WWW-Authenticate": "X-API-Key"})

    def get_job(job_id: str) -> dict:
        job = manager.store.get(job_id) if valid_job_id(job_id) else None
        if job is None:
            raise HTTPException(404, "no such job")
        return job

    def job_file(job: dict, name: str) -> Path:
        if job["state"] != "done":
            raise HTTPException(409, f"the job is {job['state']}; files exist once it is done")
        path = manager.job_dir(job["id"]) / name
        if not path.is_file():
            raise HTTPException(404, "this job has no such file")
        return path

    def reject(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
        state["metrics"].rejected.labels(str(status)).inc()
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    api = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], tags=["scans"])

    @api.post(
        "/scans",
        status_code=202,
        summary="Upload a video to scan",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "model": {"type": "string", "enum": list(config.settings.models)},
                                "config": {
                                    "type": "string",
                                    "description": "a detector config registered by the operator",
                                },
                                "squeeze_check": {
                                    "type": "boolean",
                                    "description": "also purify clips detected clean [default: the network's]",
                                },
                                "defend": {"type": "boolean", "default": True},
                                "strict": {
                                    "type": "boolean",
                                    "default": False,
                                    "description": "refuse a truncated file (422) instead of scanning the frames that decode",
                                },
                                "qp": {"type": "integer", "minimum": 0, "maximum": 51, "default": 36},
                                "polluted": {
                                    "type": "string",
                                    "enum": list(POLLUTED_RULES),
                                    "default": "exceptions",
                                },
                                "vote": {
                                    "type": "boolean",
                                    "description": "answer the per-frame majority vote [default: the detector's]",
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "413": {"description": "Upload too large"},
                "415": {"description": "Not a video"},
                "422": {"description": "A video that does not decode, or bad options"},
                "429": {"description": "Queue full (Retry-After)"},
            },
        },
    )
    async def create_scan(request: Request):
        """Upload a video (multipart part `file`, streamed to disk) with the scan options as form
        fields; the video is checked to decode before it is queued. Returns the job (202)."""
        if manager.queue_full():
            retry = manager.retry_after()
            return reject(429, "the queue is full; retry later", {"Retry-After": str(retry)})
        try:
            upload = await receive_upload(request, manager.config.tmp_dir, config.max_upload_bytes)
        except UploadError as e:
            return reject(e.status, e.detail, {"Connection": "close"} if e.status == 413 else None)
        except ClientGone:
            state["metrics"].rejected.labels("499").inc()
            return Response(status_code=400)  # nobody reads it; the temporary file is gone
        try:
            options = ScanOptions.parse(upload.fields, config.settings)
            info = await run_in_threadpool(
                check_upload,
                upload.path,
                max_side=config.max_side,
                max_frames=config.max_frames,
                strict=options.strict,
            )
            job_id = await run_in_threadpool(
                manager.submit,
                upload.path,
                name=upload.name,
                suffix=upload.suffix,
                size=upload.size,
                options=options.to_dict(),
                info=info,
            )
        except OptionsError as e:
            return reject(422, str(e))
        except UploadError as e:
            return reject(e.status, e.detail)
        except QueueFull as e:
            return reject(429, "the queue is full; retry later", {"Retry-After": str(e.retry_after)})
        finally:
            upload.path.unlink(missing_ok=True)  # moved into the job folder on success
        job = manager.store.get(job_id)
        return JSONResponse(_job_view(job), status_code=202, headers={"Location": f"/v1/scans/{job_id}"})

    @api.get("/options", summary="What a scan may ask for, and the limits")
    def scan_options():
        return {
            "models": list(config.settings.models),
            "configs": list(config.settings.configs),
            "polluted": list(POLLUTED_RULES),
            "max_upload_bytes": config.max_upload_bytes,
            "max_frames": config.max_frames,
            "max_side": config.max_side,
        }

    @api.get("/scans", summary="Recent jobs")
    def list_scans(limit: int = Query(20, ge=1, le=200)):
        return {"jobs": manager.store.recent(limit)}

    @api.get("/scans/{job_id}", summary="A job: state, progress, report")
    def get_scan(job_id: str):
        return _job_view(get_job(job_id))

    @api.delete("/scans/{job_id}", status_code=204, summary="Remove a job and its files")
    def delete_scan(job_id: str):
        if not (valid_job_id(job_id) and manager.delete(job_id)):
            raise HTTPException(404, "no such job")
        return Response(status_code=204)

    @api.get("/scans/{job_id}/defended", summary="The defended video (FFV1 .mkv)")
    def get_defended(job_id: str):
        job = get_job(job_id)
        path = job_file(job, "defended.mkv")
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(job["name"]).stem)[:60] or "video"
        return FileResponse(path, media_type="video/x-matroska", filename=f"{stem}.defended.mkv")

    @api.get("/scans/{job_id}/labels.png", summary="The per-frame label plot")
    def get_labels(job_id: str):
        return FileResponse(job_file(get_job(job_id), "labels.png"), media_type="image/png")

    @api.get("/scans/{job_id}/frames/{frame}/{which}.png", summary="Thumbnail of an exception frame")
    def get_thumbnail(job_id: str, frame: int, which: Literal["before", "after"]):
        return FileResponse(job_file(get_job(job_id), f"thumbs/{frame}-{which}.png"), media_type="image/png")

    app.include_router(api)

    @app.get("/healthz", tags=["operations"], summary="Liveness and workers")
    def healthz():
        workers = manager.workers()
        alive = sum(w["alive"] for w in workers)
        ok = alive > 0 or not workers
        body = {
            "status": "ok" if ok else "no worker alive",
            "workers": len(workers),
            "workers_alive": alive,
            "workers_ready": sum(w["alive"] and w["ready"] for w in workers),
            "jobs": manager.store.counts(),
            "time": time.time(),
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def metrics():
        return Response(generate_latest(state["metrics"].registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
