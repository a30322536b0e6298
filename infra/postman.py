"""Generates docs/postman_collection.json from docs/openapi.yaml (`make postman`).
A test fails when the two disagree, so regenerate after changing the spec."""

import json
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
VARIABLES = {"baseUrl": "http://127.0.0.1:3000", "adminToken": "", "apiKey": "", "tenantId": "", "templateKey": "", "asset": "app.js",
             "waId": "", "mediaId": "", "keyId": "", "phoneNumberId": "", "subscriptionId": ""}
PARAM_VARIABLE = {"tenantId": "tenantId", "key": "templateKey"}


def example_body(op):
    content = (op.get("requestBody") or {}).get("content", {}).get("application/json")
    if not content:
        return None
    examples = content.get("examples") or {}
    for ex in examples.values():
        return ex.get("value")
    return {}


def item(path, method, op):
    url_path = re.sub(r"\{(\w+)\}", lambda m: "{{" + PARAM_VARIABLE.get(m.group(1), m.group(1)) + "}}", path)
    security = op.get("security")
    headers = [{"key": "Content-Type", "value": "application/json"}]
    request = {"method": method.upper(), "header": headers, "url": {"raw": "{{baseUrl}}" + url_path,
               "host": ["{{baseUrl}}"], "path": [p for p in url_path.split("/") if p]}}
    if security != []:
        token = "{{adminToken}}" if security == [{"adminBearer": []}] else "{{apiKey}}"
        request["auth"] = {"type": "bearer", "bearer": [{"key": "token", "value": token, "type": "string"}]}
    body = example_body(op)
    if body is not None:
        request["body"] = {"mode": "raw", "raw": json.dumps(body, indent=2, ensure_ascii=False),
                           "options": {"raw": {"language": "json"}}}
    return {"name": op.get("summary") or op["operationId"], "request": request}


def main():
    spec = yaml.safe_load((ROOT / "docs/openapi.yaml").read_text())
    items = [item(path, method, op) for path, ops in spec["paths"].items()
             for method, op in ops.items() if method in ("get", "post", "put", "patch", "delete")]
    collection = {
        "info": {"name": spec["info"]["title"], "description": "Generated from docs/openapi.yaml by infra/postman.py",
                 "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "variable": [{"key": k, "value": v} for k, v in VARIABLES.items()],
        "item": items,
    }
    out = ROOT / "docs/postman_collection.json"
    out.write_text(json.dumps(collection, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out.relative_to(ROOT)} ({len(items)} requests)")


if __name__ == "__main__":
    main()
