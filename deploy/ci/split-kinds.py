#!/usr/bin/env python3
"""Splits rendered manifests (stdin) by kind: writes each custom resource
the kit uses to OUT/<Kind>-<n>.json and fails on any kind it does not know,
so nothing escapes validation. Usage: split-kinds.py OUT < rendered.yaml"""
import json
import pathlib
import sys

import yaml

CORE = {"Namespace", "ServiceAccount", "ConfigMap", "Service", "StatefulSet",
        "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"}
CUSTOM = {"ServiceMonitor", "PrometheusRule"}


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for n, doc in enumerate(d for d in yaml.safe_load_all(sys.stdin) if d):
        kind = doc.get("kind")
        if kind in CUSTOM:
            (out / f"{kind}-{n}.json").write_text(json.dumps(doc))
        elif kind not in CORE:
            sys.exit(f"unexpected kind {kind}: add it to deploy/ci/split-kinds.py and validate it")


if __name__ == "__main__":
    main()
