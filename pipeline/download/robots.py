"""robots.txt, honoured per request inside the guarded opener: each origin's file fetched once per
run through the same guards (address policy, deadline, size limit), cached in the process and on
disk (`work/download/robots/`, shared by every download process of the run), parsed by Protego
(Scrapy's RFC 9309 parser: longest match wins, `*` and `$` wildcards, product-token matching).

An origin our address policy refuses is not asked for its robots.txt: the request goes on and is
refused at connect time with its own reason (`download.blocked_address`).

Status rules, RFC 9309 section 2.3.1: a 2xx body is parsed (its first 500 KiB, 2.5); 4xx means
"unavailable": the crawler may access any resource (2.3.1.3); 5xx, a network error or a timeout
means "unreachable": assume complete disallow (2.3.1.4). Redirects are followed by the guarded
opener (at most `download.max_redirects`; the RFC asks for at least five, 2.3.1.2).

The group that applies is the one for the User-Agent the request carries (img2dataset sends
`(compatible; <user_agent_token>; ...)`), else `*`. A redirect's target is checked against its
own origin's robots.txt, as every hop passes through the opener's request processors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from pipeline.download.markers import BLOCKED, ROBOTS_DISALLOWED
from pipeline.files import write_text_atomically
from pipeline.storage import StoragePath, as_path, is_local

log = logging.getLogger(__name__)

# RFC 9309 2.5: crawlers SHOULD parse at least the first 500 KiB of a robots.txt.
MAX_ROBOTS_BYTES = 500 * 1024
# A process waiting for another to fetch an origin's file gives up after this many deadlines and
# fetches it itself (the other one died mid-fetch).
_CLAIM_WAIT_DEADLINES = 2
_POLL_SECONDS = 0.02
# Rules kept per process: a crawl's shards hold URLs of millions of origins, so the least
# recently used are forgotten (read back from the run's shared files if met again, not fetched)
# past this many origins, or past this many bytes of parsed robots.txt text. Protego's parsed
# rules take about 40 times the text they come from (`make bench-robots`: 59 KiB for a 1.5 KiB
# file of 60 rules, 1.8 MiB for a 50 KiB file), so 2 MiB of text is 83-92 MiB a process; a
# count cap alone let 50,000 typical files hold 2.9 GiB.
MAX_CACHED_ORIGINS = 50_000
MAX_CACHED_ROBOTS_BYTES = 2 * 2**20


@dataclass(frozen=True)
class RobotsRules:
    """What one origin's robots.txt says: `status` is `parsed` (a 2xx body), `unavailable` (4xx:
    allow all), `unreachable` (5xx, network error, timeout: disallow all) or `refused` (our
    address policy refuses the origin: the request itself will be refused, for that reason)."""

    origin: str
    status: str
    body: str = ""
    why: str = ""
    size: int = 0  # the body's length, kept when the cache drops the body

    def parser(self) -> Protego | None:
        return Protego.parse(self.body) if self.status == "parsed" else None

    def to_json(self) -> str:
        return json.dumps(
            {"origin": self.origin, "status": self.status, "body": self.body, "why": self.why}
        )

    @classmethod
    def from_json(cls, text: str) -> RobotsRules:
        return cls(**json.loads(text))


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased: robots.txt applies per origin (RFC 9309 2.3)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return f"{parts.scheme.lower()}://{netloc.lower()}"


def fetch_rules(
    origin: str, opener: urllib.request.OpenerDirector, agent: str, timeout: float
) -> RobotsRules:
    """Fetch and classify `origin`'s robots.txt through `opener` (the guarded one, without the
    robots processor)."""
    request = urllib.request.Request(f"{origin}/robots.txt", headers={"User-Agent": agent})
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_ROBOTS_BYTES)
    except urllib.error.HTTPError as err:
        err.close()
        if 400 <= err.code < 500:
            return RobotsRules(origin, "unavailable", why=f"HTTP {err.code}")
        return RobotsRules(origin, "unreachable", why=f"HTTP {err.code}")
    except (OSError, ValueError) as err:  # URLError, timeouts, refused addresses, bad responses
        message = f"{type(err).__name__}: {str(err)[:200]}"
        if BLOCKED in str(err) and "redirect to" not in str(err):  # the origin itself
            return RobotsRules(origin, "refused", why=message)
        return RobotsRules(origin, "unreachable", why=message)
    return RobotsRules(origin, "parsed", body.decode("utf-8", errors="replace"))


def shared_entry(folder: StoragePath, origin: str) -> StoragePath:
    """The file under the run's shared folder that holds `origin`'s rules."""
    return folder / f"{hashlib.sha256(origin.encode()).hexdigest()[:32]}.json"


class RobotsCache:
    """Each origin's rules, fetched once: an in-process dict (one fetch per origin however many
    threads ask at once), backed by one file per origin under `folder` that every download process
    of the run reads first. On a local folder a process claims an origin (an exclusive create)
    before fetching, so concurrent processes fetch it once; on object storage each process may
    fetch an origin once."""

    def __init__(
        self,
        folder: str | None,
        opener: urllib.request.OpenerDirector,
        timeout: float,
        deadline: float,
    ) -> None:
        self.folder = None if folder is None else as_path(folder)
        self.opener = opener
        self.timeout = timeout
        self.deadline = deadline
        # origin -> (its rules without the body, the parsed body), least recently used first.
        self._parsers: OrderedDict[str, tuple[RobotsRules, Protego | None]] = OrderedDict()
        self._held = 0  # bytes of robots.txt text behind the parsers held
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def rules(self, origin: str, agent: str) -> tuple[RobotsRules, Protego | None]:
        found = self._parsers.get(origin)
        if found is not None:
            with self._guard:
                if origin in self._parsers:
                    self._parsers.move_to_end(origin)
            return found
        with self._guard:
            lock = self._locks.setdefault(origin, threading.Lock())
        with lock:
            found = self._parsers.get(origin)
            if found is None:
                rules = self._shared(origin, agent)
                # The body is dropped once parsed: the parser is what a check needs.
                found = (dataclasses.replace(rules, body="", size=len(rules.body)), rules.parser())
                with self._guard:
                    self._parsers[origin] = found
                    self._held += len(rules.body)
                    self._evict()
        return found

    def _evict(self) -> None:
        """Forget the least recently used origins past either cap (the newest one stays)."""
        while len(self._parsers) > 1 and (
            len(self._parsers) > MAX_CACHED_ORIGINS or self._held > MAX_CACHED_ROBOTS_BYTES
        ):
            oldest, (rules, _) = self._parsers.popitem(last=False)
            self._held -= rules.size
            self._locks.pop(oldest, None)

    def _shared(self, origin: str, agent: str) -> RobotsRules:
        if self.folder is None:
            return self._fetch(origin, agent)
        entry = shared_entry(self.folder, origin)
        if entry.exists():
            return RobotsRules.from_json(entry.read_text())
        if is_local(entry):
            return self._claimed(origin, agent, entry)
        rules = self._fetch(origin, agent)
        write_text_atomically(entry, rules.to_json())
        return rules

    def _claimed(self, origin: str, agent: str, entry: StoragePath) -> RobotsRules:
        """Fetch under an exclusive claim file, or wait for the process that holds the claim."""
        entry.parent.mkdir(parents=True, exist_ok=True)
        claim = entry.with_suffix(".claim")
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            give_up = time.monotonic() + _CLAIM_WAIT_DEADLINES * self.deadline
            while time.monotonic() < give_up:
                if entry.exists():
                    return RobotsRules.from_json(entry.read_text())
                time.sleep(_POLL_SECONDS)
            log.warning("download: robots.txt of an origin still claimed; fetching it here")
        rules = self._fetch(origin, agent)
        write_text_atomically(entry, rules.to_json())
        claim.unlink(missing_ok=True)
        return rules

    def _fetch(self, origin: str, agent: str) -> RobotsRules:
        rules = fetch_rules(origin, self.opener, agent, self.timeout)
        if rules.status != "parsed":
            log.info("download: robots.txt of %s %s (%s)", origin, rules.status, rules.why)
        return rules

    def allows(self, url: str, agent: str) -> tuple[bool, RobotsRules]:
        rules, parser = self.rules(origin_of(url), agent)
        if rules.status in ("unavailable", "refused"):
            return True, rules
        if parser is None:
            return False, rules
        return parser.can_fetch(url, agent), rules


class RobotsDisallowed(OSError):
    """A request robots.txt forbids; its message starts with the `[robots_disallowed]` marker."""


class RobotsProcessor(urllib.request.BaseHandler):
    """Refuses, before any connection, a request its origin's robots.txt disallows for the
    request's User-Agent (every redirect hop too: urllib sends each through the processors)."""

    handler_order = 100  # before anything else looks at the request

    def __init__(self, cache: RobotsCache) -> None:
        self.cache = cache

    def http_request(self, req: urllib.request.Request) -> urllib.request.Request:
        agent = req.get_header("User-agent") or "*"
        allowed, rules = self.cache.allows(req.full_url, agent)
        if not allowed:
            why = "disallows this path" if rules.status == "parsed" else f"is {rules.status}"
            raise RobotsDisallowed(
                f"{ROBOTS_DISALLOWED} robots.txt of {rules.origin} {why}"
                + (f" ({rules.why})" if rules.why else "")
            )
        return req

    https_request = http_request


def robots_folder(work: StoragePath) -> StoragePath:
    """Where a run's download processes share the robots.txt files they fetched."""
    return work / "robots"
