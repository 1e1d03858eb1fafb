"""The vendored KubeRay CRD schemas (docker/schemas/) as strict jsonschema validators."""
from __future__ import annotations

import json

from tests.docker.repo import DOCKER

SCHEMAS = DOCKER / "schemas"


def strict(node):
    """The schema with unnamed fields rejected, as `kubectl apply` does (strict field validation).

    A structural CRD schema lists every field under `properties` and silently prunes the rest;
    kubectl's strict validation turns such a field into an error. In JSON Schema terms that is
    `additionalProperties: false` on every object with `properties`, unless the schema keeps
    unknown fields (`x-kubernetes-preserve-unknown-fields`) or already says what extra keys hold.
    """
    if isinstance(node, list):
        return [strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: (({n: strict(s) for n, s in v.items()}) if k == "properties" and isinstance(v, dict) else strict(v))
           for k, v in node.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def validator(kind: str):
    """A jsonschema validator for one KubeRay kind: "rayjobs" or "rayclusters"."""
    import jsonschema

    schema = strict(json.loads((SCHEMAS / f"ray.io_{kind}.v1.json").read_text()))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft4Validator)
    return cls(schema)


def errors(kind: str, doc: dict) -> list[str]:
    """Every schema violation of doc, as 'path.to.field: message' lines."""
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator(kind).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]
