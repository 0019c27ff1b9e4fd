#!/usr/bin/env python3
"""Writes strict JSON schemas of the Prometheus Operator resources the kit
uses (ServiceMonitor, PrometheusRule) into DIR, for check-jsonschema.

The schemas come from the operator's CRDs as packaged on PyPI
(cloudcoil.models.prometheus_operator: models generated from the CRDs'
openAPIV3Schema). The API server prunes unknown fields of custom resources
silently, so a misspelt key would be lost without a word: every object
schema is made strict (additionalProperties: false), like kubectl's
--validate=strict.

Usage: crd-schemas.py DIR   -> DIR/ServiceMonitor.json, DIR/PrometheusRule.json"""
import json
import pathlib
import sys

from cloudcoil.models.prometheus_operator import v1

KINDS = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}


def strict(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        # Go's regexp takes a flag group anywhere; Python's only first.
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.startswith("^(?i)"):
            node["pattern"] = "(?i)^" + pattern[5:]
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)
    return node


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for kind, model in KINDS.items():
        schema = strict(model.model_json_schema(by_alias=True, mode="validation"))
        (out / f"{kind}.json").write_text(json.dumps(schema))


if __name__ == "__main__":
    main()
