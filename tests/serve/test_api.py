"""The HTTP API without worker processes (jobs stay queued): every status code and the limits."""

from __future__ import annotations

import io
import re

import pytest
from tests.serve.helpers import files_under, write_clip

from vidshield.serve.app import STATIC
from vidshield.serve.upload import display_name


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.mkv")


def post(client, path, *, name="clip.mkv", data=None, headers=None):
    with open(path, "rb") as f:
        return client.post("/v1/scans", files={"file": (name, f, "video/x-matroska")}, data=data, headers=headers)


def temp_files(data_dir):
    return files_under(data_dir / "tmp")


def test_upload_is_queued_with_202_and_readable_with_200(make_client, clip, tmp_path):
    client = make_client()
    r = post(client, clip, data={"qp": "30", "squeeze_check": "true"})
    assert r.status_code == 202
    job = r.json()
    assert re.fullmatch(r"[0-9a-f]{32}", job["id"]) and r.headers["location"] == f"/v1/scans/{job['id']}"
    assert job["state"] == "queued" and job["progress"] == {"frames_done": 0, "frames_total": 20}
    assert job["options"] == {
        "model": "tiny",
        "config": None,
        "squeeze_check": True,
        "defend": True,
        "qp": 30,
        "polluted": "exceptions",
        "vote": None,
        "strict": False,
    }
    assert job["video"]["num_frames"] == 20 and job["video"]["width"] == 32
    got = client.get(f"/v1/scans/{job['id']}")
    assert got.status_code == 200 and got.json() == job
    assert [j["id"] for j in client.get("/v1/scans").json()["jobs"]] == [job["id"]]
    # the upload was moved into the job's folder; nothing left in tmp/
    data = tmp_path / "data"
    assert temp_files(data) == [] and files_under(data / "jobs") == [f"{job['id']}/input.mkv"]
    # no file yet: 409
    assert client.get(f"/v1/scans/{job['id']}/defended").status_code == 409


def test_unknown_or_malformed_job_ids_get_404(make_client):
    client = make_client()
    for job_id in ["0" * 32, "..%2F..%2Fetc", "not-an-id", "A" * 32]:
        assert client.get(f"/v1/scans/{job_id}").status_code == 404
        assert client.delete(f"/v1/scans/{job_id}").status_code == 404
        assert client.get(f"/v1/scans/{job_id}/labels.png").status_code == 404


def test_api_key_is_required_when_set(make_client, clip):
    client = make_client(api_key="s3cret-key")
    assert post(client, clip).status_code == 401
    assert post(client, clip, headers={"X-API-Key": "wrong"}).status_code == 401
    r = client.get("/v1/scans", headers={"X-API-Key": "s3cret-key-and-more"})
    assert r.status_code == 401 and r.json() == {"detail": "missing or wrong X-API-Key"}
    r = post(client, clip, headers={"X-API-Key": "s3cret-key"})
    assert r.status_code == 202
    assert client.get(f"/v1/scans/{r.json()['id']}", headers={"X-API-Key": "s3cret-key"}).status_code == 200
    # the page, health and metrics stay open
    assert [client.get(p).status_code for p in ("/", "/healthz", "/metrics")] == [200, 200, 200]


def test_oversize_uploads_get_413_by_header_and_while_streaming(make_client, tmp_path):
    client = make_client(max_upload_bytes=50_000)
    big = tmp_path / "big.mkv"
    big.write_bytes(b"\0" * 200_000)
    r = post(client, big)
    assert r.status_code == 413 and r.json()["detail"].startswith("upload of 2")  # refused from Content-Length
    # no Content-Length (chunked): refused while streaming, the partial file removed

    def chunks():
        boundary = b"--xyz"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.mkv"\r\n\r\n'
        for _ in range(20):
            yield b"\0" * 10_000
        yield b"\r\n" + boundary + b"--\r\n"

    r = client.post("/v1/scans", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413 and r.json()["detail"] == "upload exceeds the limit of 50000 bytes"
    assert temp_files(tmp_path / "data") == [] and files_under(tmp_path / "data" / "jobs") == []


def test_not_a_video_gets_415_and_a_broken_video_422_with_the_decoder_reason(make_client, clip, tmp_path):
    client = make_client()
    text = tmp_path / "notes.mkv"
    text.write_text("this is not a video\n" * 50)
    r = post(client, text)
    assert r.status_code == 415 and r.json()["detail"].startswith("not a video FFmpeg can read")
    assert str(tmp_path) not in r.json()["detail"]  # no server path in the reason
    truncated = tmp_path / "cut.mkv"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size * 2 // 3])
    r = post(client, truncated, data={"strict": "true"})  # strict refuses it, naming the option
    assert r.status_code == 422 and "truncated" in r.json()["detail"] and "\n" not in r.json()["detail"]
    assert "strict" in r.json()["detail"]
    short = write_clip(tmp_path / "short.mkv", frames=2)
    r = post(client, short)
    assert r.status_code == 422 and r.json()["detail"] == "2 frame(s); detection needs at least 3"
    # a body that is not multipart at all
    r = client.post("/v1/scans", content=b"raw", headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 415
    assert temp_files(tmp_path / "data") == [] and files_under(tmp_path / "data" / "jobs") == []
    r = post(client, truncated)  # by default what decodes is accepted for the scan
    assert r.status_code == 202 and r.json()["video"]["truncated"] is True, r.text


def test_bad_options_get_422(make_client, clip, tmp_path):
    client = make_client()
    for data, message in [
        ({"qp": "99"}, "qp must be an integer in 0..51; got 99"),
        ({"model": "/etc/passwd"}, "model must be one of tiny; got '/etc/passwd'"),
        ({"config": "../detector.json"}, "config must be one of: none registered; got '../detector.json'"),
        ({"polluted": "all"}, "polluted must be one of exceptions, minority, exceptions+ends; got 'all'"),
        ({"defend": "maybe"}, "defend must be true or false; got 'maybe'"),
        ({"vote": "perhaps"}, "vote must be true or false; got 'perhaps'"),
        ({"output": "/tmp/x"}, "unknown option(s): output"),
    ]:
        r = post(client, clip, data=data)
        assert (r.status_code, r.json()["detail"]) == (422, message)
    r = client.post("/v1/scans", data={"qp": "3"}, files={"other": ("a", io.BytesIO(b"x"))})
    assert r.status_code == 422 and "no file part" in r.json()["detail"]
    assert temp_files(tmp_path / "data") == [] and files_under(tmp_path / "data" / "jobs") == []


def test_a_full_queue_gets_429_with_retry_after(make_client, clip, tmp_path):
    client = make_client(queue_size=2)
    assert [post(client, clip).status_code for _ in range(2)] == [202, 202]
    r = post(client, clip)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert len(client.get("/v1/scans").json()["jobs"]) == 2
    assert temp_files(tmp_path / "data") == []


def test_delete_removes_the_job_and_its_files(make_client, clip, tmp_path):
    client = make_client()
    job_id = post(client, clip).json()["id"]
    assert (tmp_path / "data" / "jobs" / job_id).is_dir()
    assert client.delete(f"/v1/scans/{job_id}").status_code == 204
    assert client.get(f"/v1/scans/{job_id}").status_code == 404
    assert client.delete(f"/v1/scans/{job_id}").status_code == 404
    assert not (tmp_path / "data" / "jobs" / job_id).exists()


def test_client_file_names_are_display_text_only(make_client, clip, tmp_path):
    client = make_client()
    job = post(client, clip, name="../../../../etc/evil<b>.mkv").json()
    assert job["name"] == "evil<b>.mkv"
    assert display_name("..\\..\\C:\\win\\a\x07\nb.mp4") == "ab.mp4" and display_name("/") == "upload"
    data = tmp_path / "data"
    assert files_under(data / "jobs") == [f"{job['id']}/input.mkv"]
    assert not (tmp_path / "etc").exists() and not list(tmp_path.parent.glob("evil*"))


def test_health_metrics_docs_and_the_page(make_client, clip):
    client = make_client(queue_size=5)
    post(client, clip)
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["jobs"]["queued"] == 1
    text = client.get("/metrics").text
    assert 'vidshield_jobs{state="queued"} 1.0' in text and "vidshield_queue_depth 1.0" in text
    assert "vidshield_queue_capacity 5.0" in text and "vidshield_job_latency_seconds" in text
    assert "vidshield_frames_per_second" in text
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static-offline-docs/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/scans", "/v1/scans/{job_id}", "/v1/scans/{job_id}/defended", "/healthz", "/metrics"} <= set(paths)
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("index.html", "app.js", "style.css"):
        assert client.get(f"/static/{name}" if name != "index.html" else "/").status_code == 200
        # no external asset: no URL to another host anywhere in the page
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", (STATIC / name).read_text().replace(SVG_NS, ""))


SVG_NS = "http://www.w3.org/2000/svg"


def test_cors_is_off_by_default_and_on_for_listed_origins(make_client, tmp_path):
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    client = make_client()
    r = client.options("/v1/scans", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    assert (
        "access-control-allow-origin" not in client.get("/healthz", headers={"Origin": "https://example.org"}).headers
    )
    client = make_client(data_dir=tmp_path / "other", cors_origins=("https://example.org",))
    r = client.options("/v1/scans", headers=preflight)
    assert r.headers["access-control-allow-origin"] == "https://example.org"


def test_a_client_still_sending_an_oversize_body_reads_the_413(tmp_path, settings):
    """On a real socket: the refused body is drained, so the answer arrives instead of a reset."""
    import socket

    from tests.serve.helpers import LiveServer

    from vidshield.serve import ServeConfig, create_app

    app = create_app(ServeConfig(data_dir=tmp_path / "data", workers=0, settings=settings, max_upload_bytes=50_000))
    with LiveServer(app) as live:
        for declared in (True, False):  # refused from Content-Length / while streaming (chunked)
            head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.mkv"\r\n\r\n'
            body = head + b"\0" * 8_000_000 + b"\r\n--b--\r\n"
            framing = f"Content-Length: {len(body)}" if declared else "Transfer-Encoding: chunked"
            with socket.create_connection(("127.0.0.1", live.port)) as s:
                s.sendall(
                    f"POST /v1/scans HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n{framing}\r\n\r\n".encode()
                )
                for i in range(0, len(body), 16_384):
                    piece = body[i : i + 16_384]
                    s.sendall(piece if declared else b"%x\r\n%s\r\n" % (len(piece), piece))
                if not declared:
                    s.sendall(b"0\r\n\r\n")
                answer = s.recv(65536)
            assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert files_under(tmp_path / "data" / "tmp") == []


def test_a_damaged_job_row_gets_one_line_500_and_the_service_keeps_serving(make_client, clip, tmp_path):
    import sqlite3

    client = make_client()
    good = post(client, clip).json()["id"]
    bad = post(client, clip).json()["id"]
    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:  # the database is a file anyone can edit
        db.execute("UPDATE jobs SET options = ? WHERE id = ?", ("[" * 100 + "]" * 100, bad))
    r = client.get(f"/v1/scans/{bad}")
    assert r.status_code == 500
    assert r.json() == {"detail": f"job {bad}: options is nested too deeply (at most 32 levels)"}
    assert client.get(f"/v1/scans/{good}").status_code == 200
