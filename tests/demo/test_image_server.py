"""The loopback image server: plain files, every fault route, request accounting, host policy."""

from __future__ import annotations

import http.client
import io
import socket
import struct
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.demo.image_server import BOMB_SIDE, ImageServer
from pipeline.demo.synthetic_web import (
    NoiseMix,
    generate_web,
    load_ground_truth,
    write_input_parquet,
)

SLOW_SECONDS = 1.0

# Never route loopback requests through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _jpeg(width: int, height: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("files")
    for rel, seed in [
        ("images/a.jpg", 1),
        ("fault/slow/a.jpg", 2),
        ("fault/truncated/a.jpg", 3),
        ("fault/noai/a.jpg", 4),
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(_jpeg(64, 48, seed))
    Image.new("RGB", (10, 20), "red").save(root / "images" / "b.png")
    (root.parent / "secret.txt").write_text("outside the served folder")
    return root


@pytest.fixture(scope="module")
def server(files_dir: Path):
    with ImageServer(files_dir, slow_seconds=SLOW_SECONDS) as srv:
        yield srv


def _get(url: str, timeout: float = 5.0, method: str = "GET"):
    """(status, headers, body) of a request; HTTP errors are returned, not raised."""
    request = urllib.request.Request(url, method=method)
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, err.read()


def _raw(server: ImageServer, path: str, method: str = "GET"):
    """A request that neither follows redirects nor normalises the path."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def test_serves_jpeg_and_png_with_type_and_length(server: ImageServer, files_dir: Path) -> None:
    status, headers, body = _get(server.base_url + "/images/a.jpg")
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert body == (files_dir / "images/a.jpg").read_bytes()
    assert int(headers["Content-Length"]) == len(body)

    status, headers, body = _get(server.base_url + "/images/b.png")
    assert status == 200
    assert headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(body)).size == (10, 20)


def test_head_sends_headers_without_body(server: ImageServer, files_dir: Path) -> None:
    status, headers, body = _get(server.base_url + "/images/a.jpg", method="HEAD")
    assert status == 200
    assert body == b""
    assert int(headers["Content-Length"]) == (files_dir / "images/a.jpg").stat().st_size


def test_missing_file_and_path_escape_are_404(server: ImageServer) -> None:
    assert _get(server.base_url + "/images/nope.jpg")[0] == 404
    assert _raw(server, "/../secret.txt")[0] == 404
    assert _raw(server, "/images/%2e%2e/%2e%2e/secret.txt")[0] == 404
    assert _raw(server, "/images/a.jpg%00")[0] == 404


def test_fault_404_and_500(server: ImageServer) -> None:
    assert _get(server.base_url + "/fault/404/x.jpg")[0] == 404
    assert _get(server.base_url + "/fault/500/x.jpg")[0] == 500


def test_fault_slow_times_out_a_short_client_then_serves_the_image(
    server: ImageServer, files_dir: Path
) -> None:
    url = server.base_url + "/fault/slow/a.jpg"
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        _get(url, timeout=0.2)
    started = time.monotonic()
    status, headers, body = _get(url, timeout=SLOW_SECONDS + 5)
    assert time.monotonic() - started >= SLOW_SECONDS * 0.9
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert body == (files_dir / "fault/slow/a.jpg").read_bytes()


def test_fault_truncated_sends_first_half_with_matching_length(
    server: ImageServer, files_dir: Path
) -> None:
    full = (files_dir / "fault/truncated/a.jpg").read_bytes()
    status, headers, body = _get(server.base_url + "/fault/truncated/a.jpg")
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert body == full[: len(full) // 2]
    assert int(headers["Content-Length"]) == len(full) // 2
    with pytest.raises(OSError):
        Image.open(io.BytesIO(body)).load()


def test_fault_html_is_a_web_page(server: ImageServer) -> None:
    status, headers, body = _get(server.base_url + "/fault/html/x.jpg")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert body.startswith(b"<!doctype html>")
    assert int(headers["Content-Length"]) == len(body)


def test_fault_empty_is_200_with_no_bytes(server: ImageServer) -> None:
    status, headers, body = _get(server.base_url + "/fault/empty/x.jpg")
    assert (status, headers["Content-Length"], body) == (200, "0", b"")


def test_fault_bomb_is_a_small_png_declaring_14000_square(server: ImageServer) -> None:
    status, headers, body = _get(server.base_url + "/fault/bomb/x.png")
    assert status == 200
    assert headers["Content-Type"] == "image/png"
    assert 10_000 < len(body) < 40_000
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    assert body[12:16] == b"IHDR"
    assert struct.unpack(">II", body[16:24]) == (BOMB_SIDE, BOMB_SIDE) == (14000, 14000)
    # 196 Mpx is over twice Pillow's limit: it refuses the header before allocating anything.
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(body))


def test_fault_noai_carries_the_opt_out_header(server: ImageServer, files_dir: Path) -> None:
    status, headers, body = _get(server.base_url + "/fault/noai/a.jpg")
    assert status == 200
    assert headers["X-Robots-Tag"] == "noai"
    assert body == (files_dir / "fault/noai/a.jpg").read_bytes()


def test_fault_redirect_points_at_the_real_file(server: ImageServer, files_dir: Path) -> None:
    status, headers, body = _raw(server, "/fault/redirect/images/a.jpg")
    assert status == 302
    assert headers["Location"] == "/images/a.jpg"
    assert body == b""
    status, _, body = _get(server.base_url + "/fault/redirect/images/a.jpg")
    assert status == 200
    assert body == (files_dir / "images/a.jpg").read_bytes()


def test_request_count_and_paths(files_dir: Path) -> None:
    with ImageServer(files_dir) as srv:
        assert srv.request_count == 0
        _get(srv.base_url + "/images/a.jpg")
        _get(srv.base_url + "/fault/404/q.jpg")
        _get(srv.base_url + "/images/a.jpg?x=1", method="HEAD")
        # A redirect is two requests: the 302 and the target.
        _get(srv.base_url + "/fault/redirect/images/b.png")
        assert srv.request_count == 5
        assert srv.requests == [
            "/images/a.jpg",
            "/fault/404/q.jpg",
            "/images/a.jpg?x=1",
            "/fault/redirect/images/b.png",
            "/images/b.png",
        ]


def test_many_concurrent_requests_are_all_counted(files_dir: Path) -> None:
    with ImageServer(files_dir) as srv:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: _get(srv.base_url + "/images/a.jpg")[0], range(40)))
        assert statuses == [200] * 40
        assert srv.request_count == 40


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "10.0.0.1", "example.com", ""])
def test_non_loopback_host_is_refused(files_dir: Path, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ImageServer(files_dir, host=host)


def test_binds_only_the_loopback_address(files_dir: Path) -> None:
    with ImageServer(files_dir, host="127.0.0.1") as srv:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}"
        assert srv.port > 0
        assert srv._httpd is not None
        assert srv._httpd.server_address[0] == "127.0.0.1"


def test_base_url_needs_start_and_stop_is_idempotent(files_dir: Path) -> None:
    srv = ImageServer(files_dir)
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    srv.start()
    port = srv.port
    srv.stop()
    srv.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_client_hang_up_is_quiet(files_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with ImageServer(files_dir, slow_seconds=0.3) as srv:
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            _get(srv.base_url + "/fault/slow/a.jpg", timeout=0.05)
        time.sleep(0.5)  # the server writes its late response to a closed socket
        assert _get(srv.base_url + "/images/a.jpg")[0] == 200
    assert capfd.readouterr().err == ""


def test_stop_does_not_wait_for_slow_requests(files_dir: Path) -> None:
    srv = ImageServer(files_dir, slow_seconds=30).start()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        _get(srv.base_url + "/fault/slow/a.jpg", timeout=0.1)
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 5


def test_generated_web_served_end_to_end(tmp_path: Path) -> None:
    """Every generated row's URL behaves as its ground-truth noise kind says."""
    mix = NoiseMix()
    web = generate_web(tmp_path / "web", n_pairs=200, seed=5, mix=mix, image_size=(64, 80))
    gt = {r["gt_id"]: r for r in load_ground_truth(web).to_pylist()}
    with ImageServer(web.files_dir, slow_seconds=1.0) as srv:
        table = write_input_parquet(web, srv.base_url, tmp_path / "input.parquet")
        rows = pq.read_table(table).to_pylist()
        outcomes: dict[str, set[str]] = {}
        for row in rows:
            truth = gt[row["gt_id"]]
            noise = truth["noise"]
            try:
                status, headers, body = _get(row["url"], timeout=0.3)
            except (TimeoutError, urllib.error.URLError):
                outcomes.setdefault(noise, set()).add("timeout")
                continue
            if status != 200:
                outcomes.setdefault(noise, set()).add(str(status))
            elif headers["Content-Type"] != "image/jpeg":
                outcomes.setdefault(noise, set()).add(headers["Content-Type"])
            elif not body:
                outcomes.setdefault(noise, set()).add("empty")
            elif headers.get("X-Robots-Tag") == "noai":
                outcomes.setdefault(noise, set()).add("noai")
            else:
                try:
                    with Image.open(io.BytesIO(body)) as img:
                        img.load()
                        size = img.size
                except OSError:
                    outcomes.setdefault(noise, set()).add("broken")
                    continue
                assert size == (truth["width"], truth["height"])
                outcomes.setdefault(noise, set()).add("image")
    assert outcomes == {
        "clean": {"image"},
        "mismatched_caption": {"image"},
        "boilerplate_caption": {"image"},
        "non_english": {"image"},
        "exact_duplicate": {"image"},
        "near_duplicate_reencode": {"image"},
        "near_duplicate_resize": {"image"},
        "near_duplicate_crop": {"image"},
        "small_image": {"image"},
        "extreme_aspect": {"image"},
        "fault_404": {"404"},
        "fault_500": {"500"},
        "fault_slow": {"timeout"},
        "fault_truncated": {"broken"},
        "fault_html": {"text/html; charset=utf-8"},
        "fault_empty": {"empty"},
        "fault_bomb": {"image/png"},
        "fault_noai": {"noai"},
        "fault_redirect": {"image"},
    }
