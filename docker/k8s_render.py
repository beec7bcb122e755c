"""Render a kustomization offline (no kubectl here) and validate every object with kubernetes-validate.

Supports the subset of kustomize that deploy/k8s uses, and refuses anything else loudly:
``resources`` (files and directories with a kustomization), ``namespace``, ``labels`` (pairs, without
selectors), ``images`` (newName/newTag), ``replicas`` and ``patches`` given as ``path:`` to a strategic
merge patch (maps merge; lists of maps with ``name`` merge by name; other lists are replaced — the way
kustomize merges containers, env, ports and volumes). What it does NOT prove: that the real kustomize
renders byte-for-byte the same, and anything only a live API server checks (admission, CRDs, quotas).

    python docker/k8s_render.py deploy/k8s/overlays/production            # print the rendered YAML
    python docker/k8s_render.py --validate deploy/k8s/overlays/production  # render + validate
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_VERSION = "1.30.0"
SUPPORTED_KEYS = {"apiVersion", "kind", "namespace", "resources", "labels", "images", "replicas", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}

Obj = dict[str, Any]


class RenderError(Exception):
    pass


def _load_all(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def strategic_merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = strategic_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        merged = [copy.deepcopy(i) for i in base]
        index = {item["name"]: n for n, item in enumerate(merged)}
        for item in patch:
            if item["name"] in index:
                merged[index[item["name"]]] = strategic_merge(merged[index[item["name"]]], item)
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)


def _pod_specs(obj: Obj) -> list[Obj]:
    if obj["kind"] in POD_TEMPLATE_KINDS:
        return [obj["spec"]["template"]["spec"]]
    return []


def render(directory: Path) -> list[Obj]:
    kfile = directory / "kustomization.yaml"
    if not kfile.exists():
        raise RenderError(f"{directory}: no kustomization.yaml")
    k = yaml.safe_load(kfile.read_text())
    unknown = set(k) - SUPPORTED_KEYS
    if unknown:
        raise RenderError(f"{kfile}: unsupported kustomize fields {sorted(unknown)}")

    objects: list[Obj] = []
    for entry in k.get("resources", []):
        path = (directory / entry).resolve()
        objects.extend(render(path) if path.is_dir() else _load_all(path))

    def find(kind: str, name: str) -> Obj:
        matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
        if len(matches) != 1:
            raise RenderError(f"{kfile}: patch target {kind}/{name} matched {len(matches)} objects")
        return matches[0]

    for patch_entry in k.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise RenderError(f"{kfile}: only `patches: - path:` is supported, got {patch_entry}")
        for patch in _load_all(directory / patch_entry["path"]):
            target = find(patch["kind"], patch["metadata"]["name"])
            merged = strategic_merge(target, patch)
            target.clear()
            target.update(merged)

    for rep in k.get("replicas", []):
        matches = [o for o in objects if o["metadata"]["name"] == rep["name"] and o["kind"] in POD_TEMPLATE_KINDS]
        if not matches:
            raise RenderError(f"{kfile}: replicas target {rep['name']} not found")
        for obj in matches:
            obj["spec"]["replicas"] = rep["count"]

    for image in k.get("images", []):
        for obj in objects:
            for spec in _pod_specs(obj):
                for container in spec.get("containers", []) + spec.get("initContainers", []):
                    name, _, tag = container["image"].partition(":")
                    if name == image["name"]:
                        container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"

    for label_set in k.get("labels", []):
        if label_set.get("includeSelectors"):
            raise RenderError(f"{kfile}: labels with includeSelectors are not supported")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label_set["pairs"])

    if "namespace" in k:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = k["namespace"]
    return objects


def validate(objects: list[Obj], *, version: str = KUBERNETES_VERSION) -> list[str]:
    import kubernetes_validate

    errors = []
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{where}: {exc.message} at {'.'.join(str(p) for p in exc.path)}")
        except Exception as exc:  # unknown kind / version: report, do not crash the linter
            errors.append(f"{where}: {type(exc).__name__}: {exc}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--validate", action="store_true")
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    args = parser.parse_args(argv)
    try:
        objects = render(args.directory)
    except (RenderError, OSError, yaml.YAMLError, KeyError) as exc:
        print(f"render failed: {exc}", file=sys.stderr)
        return 1
    if not args.validate:
        yaml.safe_dump_all(objects, sys.stdout, sort_keys=False)
        return 0
    errors = validate(objects, version=args.kubernetes_version)
    for error in errors:
        print(f"INVALID {args.directory}: {error}", file=sys.stderr)
    kinds = sorted({o["kind"] for o in objects})
    print(f"{args.directory}: {len(objects)} objects ({', '.join(kinds)}), {len(errors)} invalid")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
