"""Download stage: img2dataset over the candidates, hardened against SSRF, huge bodies and
decompression bombs, with every failure mapped to a reason code in the ledger."""

import os

# albumentations (imported by img2dataset) checks PyPI for updates at import: no network here.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
