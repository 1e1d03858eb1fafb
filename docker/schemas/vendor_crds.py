"""Vendor the openAPIV3Schema of KubeRay's RayJob and RayCluster CRDs (ray.io/v1) as JSON.

    python docker/schemas/vendor_crds.py GIT_DIR [COMMIT]

GIT_DIR is a clone (or bare git dir) of https://github.com/ray-project/kuberay; COMMIT defaults
to HEAD. Writes docker/schemas/ray.io_{rayjobs,rayclusters}.v1.json: the schema exactly as in
ray-operator/config/crd/bases/, minus the `description` strings (documentation, about 80% of
the bytes), plus a `$comment` naming the upstream file and commit. tests/docker/test_specs.py
validates docker/rayjob.yaml against them.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CRDS = ("rayjobs", "rayclusters")
UPSTREAM = "https://github.com/ray-project/kuberay"


def strip_descriptions(node):
    """The schema without `description` keys (a property *named* description is kept)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: strip_descriptions(sub) for name, sub in value.items()}
            else:
                out[key] = strip_descriptions(value)
        return out
    if isinstance(node, list):
        return [strip_descriptions(x) for x in node]
    return node


def v1_schema(crd: dict) -> dict:
    """openAPIV3Schema of the CRD's ray.io/v1 version."""
    for version in crd["spec"]["versions"]:
        if version["name"] == "v1":
            return version["schema"]["openAPIV3Schema"]
    raise SystemExit(f"{crd['metadata']['name']}: no v1 version")


def main(git_dir: str, commit: str = "HEAD") -> None:
    sha = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", commit], capture_output=True, text=True,
                         check=True).stdout.strip()
    for name in CRDS:
        path = f"ray-operator/config/crd/bases/ray.io_{name}.yaml"
        text = subprocess.run(["git", "--git-dir", git_dir, "show", f"{sha}:{path}"], capture_output=True,
                              text=True, check=True).stdout
        schema = {"$comment": f"openAPIV3Schema (v1) of {UPSTREAM}/blob/{sha}/{path}, descriptions removed;"
                              " Apache-2.0, see docker/schemas/README.md",
                  **strip_descriptions(v1_schema(yaml.safe_load(text)))}
        out = HERE / f"ray.io_{name}.v1.json"
        out.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n")
        print(f"{out.name}: {out.stat().st_size} bytes from {path} at {sha}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
