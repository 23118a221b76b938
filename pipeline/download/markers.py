"""The markers our download guards put into their error messages, which `reasons` maps to
reason codes. Apart from the guards so that classifying a message (in every Spark worker of the
ledger job) imports neither img2dataset nor an image library."""

from __future__ import annotations

# pipeline.download.fetch_guard
BLOCKED = "[blocked_address]"
TOO_LARGE = "[too_large]"
DEADLINE = "[deadline]"
TOO_MANY_REDIRECTS = "[too_many_redirects]"
BAD_RESPONSE = "[bad_response]"
# pipeline.download.robots
ROBOTS_DISALLOWED = "[robots_disallowed]"
# pipeline.download.image_guard
TOO_MANY_PIXELS = "[too_many_pixels]"
DECODE_ERROR = "Image decoding error"
