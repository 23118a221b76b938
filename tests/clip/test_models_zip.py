"""The model configs load from the --py-files zip alone, as on an executor that has no checkout:
a fresh interpreter without site processing (so no editable install) sees only the zip and the
venv's site-packages, registers the configs with open_clip and builds a model from one."""

from __future__ import annotations

import json
import site
import subprocess
import sys
import zipfile

from pipeline.spark.packaging import build_pyfiles_zip, project_root

PROBE = """
import json, sys
zip_path, site_dirs, root = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
sys.path[:] = [zip_path] + [p for p in sys.path if p and not p.startswith(root)] + site_dirs
import open_clip
from pipeline.clip import models
names = models.register_project_configs()
net, _, _ = models.load_clip("curate-micro-vit", "", "cpu")
ours = [m for n, m in sys.modules.items() if n.split(".")[0] in ("pipeline", "schemas")]
outside = [m.__name__ for m in ours if not (getattr(m, "__file__", "") or "").startswith(zip_path)]
print(json.dumps({
    "names": names,
    "models_file": models.__file__,
    "config": open_clip.get_model_config("curate-micro-vit"),
    "embed_dim": net.text_projection.shape[1],
    "outside": outside,
}))
"""


def test_model_configs_load_from_the_pyfiles_zip(tmp_path):
    package = build_pyfiles_zip(tmp_path / "curate.zip")
    with zipfile.ZipFile(package) as archive:
        shipped = json.loads(archive.read("pipeline/clip/model_configs/curate-micro-vit.json"))
    # -S: no site-packages and no .pth files, so the editable install's finder never loads.
    done = subprocess.run(
        [sys.executable, "-S", "-c", PROBE, str(package), json.dumps(site.getsitepackages())]
        + [str(project_root())],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["models_file"].startswith(str(package))
    assert seen["outside"] == []
    assert seen["names"] == ["curate-micro-vit", "curate-tiny-vit"]
    assert seen["config"] == shipped
    assert seen["embed_dim"] == shipped["embed_dim"]
