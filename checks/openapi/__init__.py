"""Reading OpenAPI documents, shared by the checks that read them (api_inventory,
auth_posture) and owned by neither: loading a spec as JSON or YAML under hard limits
(`loading`, with `fast_yaml` as its fast path for plain YAML), resolving its `$ref`s
(`refs`), reading its schemas and `oneOf`/`anyOf` variants (`schemas`, `variants`),
reducing it to frozen operations (`model` builds the `ApiInventory` of `inventory`), and
turning a path it names into a probe URL on the target's own origin (`probe_urls`). Like
checks/http.py it is part of checks and may be imported by any check, but imports none."""
