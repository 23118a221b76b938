"""robots.txt honoured inside the guarded opener, against a real server on 127.0.0.1: the group
for our user agent or `*`, longest match and wildcards (Protego), RFC 9309's status rules (4xx
allow, 5xx and timeouts disallow), one fetch per origin across threads and processes, redirect
hops checked, and the stage's ledger reason."""

from __future__ import annotations

import io
import multiprocessing
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.config import load_config
from pipeline.download.fetch_guard import FetchPolicy, build_opener
from pipeline.download.robots import RobotsDisallowed, origin_of
from pipeline.ledger import read_ledger
from pipeline.run_dir import RunDir
from pipeline.runner import run_stage
from tests.conftest import LOCAL_DOWNLOAD, write_parquet

# What img2dataset sends with download.user_agent_token=img2dataset (downloader.py).
IMG2DATASET_AGENT = (
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:72.0) Gecko/20100101 Firefox/72.0"
    " (compatible; img2dataset; +https://github.com/rom1504/img2dataset)"
)
OTHER_AGENT = "Mozilla/5.0 (compatible; SomeOtherBot/2.1)"


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (40, 120, 200)).save(out, "JPEG", quality=90)
    return out.getvalue()


JPEG = _jpeg()


class RobotsServer:
    """Serves `robots` (status, body, delay) at /robots.txt, a JPEG anywhere else, and
    /redirect?to=URL as a 302; counts the robots.txt fetches."""

    def __init__(self, status: int = 200, body: str = "", delay: float = 0.0) -> None:
        self.status, self.body, self.delay = status, body, delay
        self.robots_fetches = 0
        self.images = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/robots.txt":
                    with outer._lock:
                        outer.robots_fetches += 1
                    time.sleep(outer.delay)
                    payload = outer.body.encode()
                    self.send_response(outer.status)
                    self.send_header("Content-Type", "text/plain")
                elif self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                    payload = b""
                else:
                    with outer._lock:
                        outer.images += 1
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    payload = JPEG
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> RobotsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _policy(cache: str | None = None, deadline: float = 5.0) -> FetchPolicy:
    return FetchPolicy(
        allowed_networks=("127.0.0.1/32",), deadline=deadline, robots_txt=True, robots_cache=cache
    )


def _fetch(opener: urllib.request.OpenerDirector, url: str, agent: str = IMG2DATASET_AGENT) -> str:
    """'ok', or the refusal's message."""
    request = urllib.request.Request(url, headers={"User-Agent": agent})
    try:
        with opener.open(request, timeout=5) as response:
            response.read()
        return "ok"
    except RobotsDisallowed as err:
        return str(err)


RULES = """
User-agent: img2dataset
Disallow: /private/
Allow: /private/shared/
Disallow: /*.png$

User-agent: *
Disallow: /
"""

PARSED_CASES = [
    ("/public/a.jpg", IMG2DATASET_AGENT, True),
    ("/private/a.jpg", IMG2DATASET_AGENT, False),
    # Longest match wins: the Allow is longer than the Disallow it sits under.
    ("/private/shared/a.jpg", IMG2DATASET_AGENT, True),
    # `*` and `$` wildcards.
    ("/public/deep/a.png", IMG2DATASET_AGENT, False),
    ("/public/a.png?size=2", IMG2DATASET_AGENT, True),
    # Another agent falls to the `*` group.
    ("/public/a.jpg", OTHER_AGENT, False),
]


@pytest.mark.parametrize(("path", "agent", "allowed"), PARSED_CASES)
def test_parsed_rules_for_our_agent_or_star(path, agent, allowed):
    with RobotsServer(body=RULES) as server:
        outcome = _fetch(build_opener(_policy()), server.base + path, agent)
    if allowed:
        assert outcome == "ok"
    else:
        assert outcome == (f"[robots_disallowed] robots.txt of {server.base} disallows this path")


STATUS_CASES = [
    # RFC 9309 2.3.1.3: 4xx is "unavailable", any resource may be fetched.
    (404, 0.0, "ok"),
    (403, 0.0, "ok"),
    (410, 0.0, "ok"),
    # 2.3.1.4: 5xx (and network errors, timeouts) is "unreachable", complete disallow.
    (500, 0.0, "is unreachable (HTTP 500)"),
    (503, 0.0, "is unreachable (HTTP 503)"),
    (200, 3.0, "is unreachable (FetchRefused: [deadline] timed out"),
]


@pytest.mark.parametrize(("status", "delay", "expected"), STATUS_CASES)
def test_status_rules_follow_rfc_9309(status, delay, expected):
    with RobotsServer(
        status=status, body="User-agent: *\nDisallow: /\n" if delay else "x"
    ) as server:
        server.delay = delay
        opener = build_opener(_policy(deadline=1.0))
        started = time.monotonic()
        outcome = _fetch(opener, server.base + "/a.jpg")
        took = time.monotonic() - started
        # The verdict is cached: a second request makes no second robots.txt fetch.
        again = _fetch(opener, server.base + "/b.jpg")
    if expected == "ok":
        assert outcome == again == "ok"
    else:
        prefix = f"[robots_disallowed] robots.txt of {server.base} "
        assert outcome.startswith(prefix + expected), outcome
        assert again.startswith(prefix + expected)
    assert server.robots_fetches == 1
    assert took < 1.0 + 1.0  # the robots.txt fetch is held to the deadline too


def test_unreachable_origin_disallows():
    with RobotsServer() as server:
        base = server.base
    outcome = _fetch(build_opener(_policy()), base + "/a.jpg")  # nothing listens there now
    assert outcome.startswith(f"[robots_disallowed] robots.txt of {base} is unreachable")


def test_redirect_target_is_checked_against_its_own_robots_txt():
    with (
        RobotsServer(body="User-agent: *\nAllow: /\n") as first,
        RobotsServer(body="User-agent: *\nDisallow: /\n") as second,
    ):
        outcome = _fetch(build_opener(_policy()), f"{first.base}/redirect?to={second.base}/x.jpg")
        assert outcome == f"[robots_disallowed] robots.txt of {second.base} disallows this path"
        assert (first.robots_fetches, second.robots_fetches) == (1, 1)
        assert second.images == 0


def test_one_fetch_per_origin_across_threads(tmp_path):
    with RobotsServer(body="User-agent: *\nDisallow: /private/\n", delay=0.3) as server:
        opener = build_opener(_policy(str(tmp_path / "robots")))
        urls = [f"{server.base}/{'private' if i % 2 else 'public'}/{i}.jpg" for i in range(64)]
        with ThreadPoolExecutor(32) as pool:
            outcomes = list(pool.map(lambda u: _fetch(opener, u), urls))
    assert outcomes.count("ok") == 32
    assert server.robots_fetches == 1
    assert server.images == 32


def _fetch_in_process(cache: str, url: str, queue) -> None:  # type: ignore[no-untyped-def]
    queue.put(_fetch(build_opener(_policy(cache)), url))


def test_processes_of_a_run_share_one_fetch_per_origin(tmp_path):
    cache = str(tmp_path / "robots")
    ctx = multiprocessing.get_context("spawn")
    with RobotsServer(body="User-agent: *\nDisallow: /private/\n", delay=0.5) as server:
        queue = ctx.Queue()
        procs = [
            ctx.Process(
                target=_fetch_in_process, args=(cache, f"{server.base}/public/{i}.jpg", queue)
            )
            for i in range(3)
        ]
        for p in procs:
            p.start()
        outcomes = [queue.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
    assert outcomes == ["ok"] * 3
    assert server.robots_fetches == 1
    assert not list((tmp_path / "robots").glob("*.claim"))


def test_origin_is_scheme_host_and_port_lower_cased():
    assert origin_of("HTTP://Example.COM:8080/a/b?c") == "http://example.com:8080"
    assert origin_of("https://example.com/a") == "https://example.com"
    assert origin_of("http://[::1]:81/x") == "http://[::1]:81"


def test_download_stage_ledgers_disallowed_rows_and_fetches_robots_txt_once(spark, tmp_path):
    with RobotsServer(body="User-agent: img2dataset\nDisallow: /private/\n") as server:
        paths = [f"/{'private' if i % 3 == 0 else 'public'}/{i}.jpg" for i in range(30)]
        src = write_parquet(
            tmp_path / "input.parquet",
            {
                "url": [server.base + p for p in paths],
                "caption": [f"a blue square photographed on day number {i}" for i in range(30)],
            },
        )
        run = RunDir(tmp_path / "run")
        config = load_config(None, LOCAL_DOWNLOAD)
        run_stage("ingest", run.root, config, input_path=str(src))
        run_stage("preselect", run.root, config)
        entry = run_stage("download", run.root, config)
        assert server.robots_fetches == 1
    kept = pq.read_table(run.candidates).num_rows
    assert entry["dropped_by_reason"].get("download.robots_disallowed") == 10
    reasons = read_ledger(run.ledger_for("download")).column("reason").to_pylist()
    assert reasons.count("download.robots_disallowed") == 10
    assert entry["rows_kept"] == kept - 10
    assert server.images == kept - 10


def test_respect_robots_txt_off_fetches_no_robots_txt():
    with RobotsServer(body="User-agent: *\nDisallow: /\n") as server:
        policy = FetchPolicy(allowed_networks=("127.0.0.1/32",), robots_txt=False)
        assert _fetch(build_opener(policy), server.base + "/private/a.jpg") == "ok"
    assert server.robots_fetches == 0


def test_forgotten_origins_are_read_back_from_the_shared_files_not_fetched(tmp_path, monkeypatch):
    from pipeline.download import robots

    monkeypatch.setattr(robots, "MAX_CACHED_ORIGINS", 1)
    with (
        RobotsServer(body="User-agent: *\nDisallow: /private/\n") as first,
        RobotsServer(body="User-agent: *\nAllow: /\n") as second,
    ):
        opener = build_opener(_policy(str(tmp_path / "robots")))
        for _ in range(3):
            assert _fetch(opener, first.base + "/private/a.jpg").endswith("disallows this path")
            assert _fetch(opener, second.base + "/private/a.jpg") == "ok"
        assert (first.robots_fetches, second.robots_fetches) == (1, 1)


def test_an_origin_the_address_policy_refuses_keeps_its_own_reason():
    import urllib.error

    with RobotsServer(body="User-agent: *\nAllow: /\n") as server:
        opener = build_opener(FetchPolicy(robots_txt=True))  # loopback not allowed
        request = urllib.request.Request(server.base + "/a.jpg", headers={"User-Agent": "x"})
        with pytest.raises(urllib.error.URLError, match=r"\[blocked_address\]"):
            opener.open(request, timeout=5)
    assert server.robots_fetches == 0 and server.images == 0


def test_the_cache_keeps_its_byte_budget_and_forgets_the_least_recently_used(tmp_path, monkeypatch):
    """Parsed rules take ~40x their text (make bench-robots): the cache is bounded by the text's
    bytes, not only by origins, forgets the least recently used first, and keeps no bodies."""
    from pipeline.download import robots

    body = "User-agent: *\nDisallow: /private/\n"  # 35 bytes
    monkeypatch.setattr(robots, "MAX_CACHED_ROBOTS_BYTES", 3 * len(body) - 1)
    folder = tmp_path / "robots"
    folder.mkdir()
    a, b, c, d = (f"http://h{i}.example" for i in range(4))
    for origin in (a, b, c, d):
        robots.shared_entry(folder, origin).write_text(
            robots.RobotsRules(origin, "parsed", body).to_json()
        )
    # No opener: every origin is read from the shared folder, none fetched.
    cache = robots.RobotsCache(str(folder), opener=None, timeout=1.0, deadline=1.0)
    for origin in (a, b, c):
        cache.rules(origin, "x")
    assert list(cache._parsers) == [b, c] and cache._held == 2 * len(body)
    cache.rules(b, "x")  # a hit: b is now the most recently used
    cache.rules(d, "x")
    assert list(cache._parsers) == [b, d]
    assert {rules.body for rules, _ in cache._parsers.values()} == {""}
    assert {rules.size for rules, _ in cache._parsers.values()} == {len(body)}
    assert cache.allows(f"{c}/private/x.jpg", "x")[0] is False  # read back, rules intact
