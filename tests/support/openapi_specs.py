"""Real-shaped OpenAPI specs for tests and benchmarks, written to disk.

`write_multi_file_spec` lays a spec out the way big providers split theirs: a root document,
one file per path item under `paths/<resource>/`, one file per schema under
`components/schemas/<resource>/`, shared parameters, responses and schemas under `common/`,
relative `$ref`s across folders (`../../common/Error.yaml`), mutually recursive schemas
(each resource and its partner), a self-recursive one, and request bodies whose `oneOf`
variants carry a discriminator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FILES_PER_RESOURCE = 7
SHARED_FILES = 6


@dataclass(frozen=True, slots=True)
class SpecChanges:
    """What the second version of a generated spec changes."""

    insert_variant: bool = False  # a new oneOf variant at the front of every request body
    public_resources: int = 0  # the first N resources lose their security requirement
    removed_resources: int = 0  # the last N resources' item operations are gone


def resource_count(files: int) -> int:
    """How many resources make a spec of at least `files` files."""
    return max(1, -(-(files - SHARED_FILES - 1) // FILES_PER_RESOURCE))


def write_multi_file_spec(
    root: Path,
    resources: int,
    *,
    padding: int = 0,
    changes: SpecChanges | None = None,
    openapi: str = "3.0.3",
) -> Path:
    """Write the spec under `root` and return its root document. `padding` adds that many
    documented properties to each resource schema (about 120 bytes each)."""
    changes = changes or SpecChanges()
    _write(root / "common" / "Error.yaml", _ERROR)
    _write(root / "common" / "Page.yaml", _PAGE)
    _write(root / "common" / "Address.yaml", _ADDRESS)
    _write(root / "common" / "parameters" / "limit.yaml", _LIMIT)
    _write(root / "common" / "responses" / "NotFound.yaml", _NOT_FOUND)
    _write(root / "common" / "Node.yaml", _NODE)  # self-recursive
    paths: list[str] = []
    for number in range(resources):
        name = f"res{number:04d}"
        partner = f"res{number ^ 1:04d}" if (number ^ 1) < resources else name
        secured = number >= changes.public_resources
        removed = number >= resources - changes.removed_resources
        _write_resource(
            root, name, partner, padding, changes.insert_variant, secured, removed, openapi
        )
        paths.append(f"  /v1/{name}:\n    $ref: 'paths/{name}/collection.yaml'\n")
        if not removed:
            paths.append(f"  /v1/{name}/{{id}}:\n    $ref: 'paths/{name}/item.yaml'\n")
    document = root / "openapi.yaml"
    _write(
        document,
        f"openapi: {openapi}\ninfo: {{title: Generated, version: '1'}}\n"
        "servers: [{url: 'https://api.example.test'}]\n"
        "security: [{oauth: [read]}]\n"
        "components:\n  securitySchemes:\n    oauth:\n      type: oauth2\n      flows:\n"
        "        clientCredentials: {tokenUrl: 'https://auth.example.test/token', "
        "scopes: {read: r, write: w}}\n"
        "paths:\n" + "".join(paths),
    )
    return document


def _write_resource(
    root: Path,
    name: str,
    partner: str,
    padding: int,
    insert_variant: bool,
    secured: bool,
    removed: bool,
    openapi: str,
) -> None:
    schemas = root / "components" / "schemas" / name
    v31 = openapi.startswith("3.1")
    # 3.1: JSON Schema 2020-12 (type arrays with null, const tags); 3.0: nullable, enums
    nullable = "{type: [string, 'null']}" if v31 else "{type: string, nullable: true}"
    security = "" if secured else "  security: []\n"
    _write(
        root / "paths" / name / "collection.yaml",
        "get:\n"
        f"  operationId: list_{name}\n"
        "  parameters:\n    - $ref: '../../common/parameters/limit.yaml'\n"
        f"{security}"
        "  responses:\n"
        "    '200':\n      description: ok\n      content:\n        application/json:\n"
        f"          schema: {{$ref: '../../components/schemas/{name}/List.yaml'}}\n"
        "    default: {$ref: '../../common/responses/NotFound.yaml'}\n"
        "post:\n"
        f"  operationId: create_{name}\n"
        f"{security}"
        "  requestBody:\n    required: true\n    content:\n      application/json:\n"
        f"        schema: {{$ref: '../../components/schemas/{name}/Create.yaml'}}\n"
        "  responses:\n"
        "    '201':\n      description: created\n      content:\n        application/json:\n"
        f"          schema: {{$ref: '../../components/schemas/{name}/Resource.yaml'}}\n"
        "    '400':\n      description: bad\n      content:\n        application/json:\n"
        "          schema: {$ref: '../../common/Error.yaml'}\n",
    )
    if not removed:
        _write(
            root / "paths" / name / "item.yaml",
            "parameters:\n"
            f"  - $ref: '../../components/schemas/{name}/id.yaml'\n"
            "get:\n"
            f"  operationId: get_{name}\n"
            f"{security}"
            "  responses:\n"
            "    '200':\n      description: ok\n      content:\n        application/json:\n"
            f"          schema: {{$ref: '../../components/schemas/{name}/Resource.yaml'}}\n"
            "    '404': {$ref: '../../common/responses/NotFound.yaml'}\n"
            "delete:\n"
            f"  operationId: delete_{name}\n"
            f"{security}"
            "  responses:\n    '204': {description: gone}\n",
        )
    else:
        _write(root / "paths" / name / "item.yaml", "{}\n")
    extra = "".join(
        f"  field{index:03d}:\n    type: string\n"
        f"    description: 'Documented field {index} of {name}, kept for size.'\n"
        for index in range(padding)
    )
    _write(
        schemas / "Resource.yaml",
        "type: object\nrequired: [id, status]\nproperties:\n"
        "  id: {type: string}\n"
        f"  note: {nullable}\n"
        "  status: {$ref: './Status.yaml'}\n"
        "  address: {$ref: '../../../common/Address.yaml'}\n"
        "  tree: {$ref: '../../../common/Node.yaml'}\n"
        f"  partner: {{$ref: '../{partner}/Resource.yaml'}}\n" + extra,
    )
    _write(schemas / "Status.yaml", "type: string\nenum: [active, paused, closed]\n")
    _write(
        schemas / "List.yaml",
        "allOf:\n  - $ref: '../../../common/Page.yaml'\n  - type: object\n    properties:\n"
        "      items:\n        type: array\n        items: {$ref: './Resource.yaml'}\n",
    )
    variants = [
        ("card", "[visa, mastercard, amex]"),
        ("bank", "[sepa, ach, bacs]"),
        ("wallet", "[apple, google]"),
    ]
    if insert_variant:
        variants.insert(0, ("voucher", "[gift, promo]"))
    tag = "{{const: {kind}}}" if v31 else "{{type: string, enum: [{kind}]}}"
    one_of = "".join(
        f"    - title: {kind}\n      type: object\n      required: [kind]\n"
        f"      properties:\n        kind: {tag.format(kind=kind)}\n"
        f"        network: {{type: string, enum: {networks}}}\n"
        for kind, networks in variants
    )
    _write(
        schemas / "Create.yaml",
        "type: object\nproperties:\n  name: {type: string}\n"
        "  status: {$ref: './Status.yaml'}\n"
        "  payment:\n    discriminator: {propertyName: kind}\n    oneOf:\n" + one_of,
    )
    _write(
        schemas / "id.yaml",
        "name: id\nin: path\nrequired: true\nschema: {type: string}\n",
    )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


_ERROR = "type: object\nproperties:\n  code: {type: integer}\n  message: {type: string}\n"
_PAGE = "type: object\nproperties:\n  next: {type: string}\n  total: {type: integer}\n"
_ADDRESS = (
    "type: object\nproperties:\n  street: {type: string}\n  city: {type: string}\n"
    "  country: {type: string, enum: [DE, FR, GB, US]}\n"
)
_LIMIT = "name: limit\nin: query\nschema: {type: integer, maximum: 100}\n"
_NOT_FOUND = (
    "description: not found\ncontent:\n  application/json:\n    schema: {$ref: '../Error.yaml'}\n"
)
_NODE = (
    "type: object\nproperties:\n  label: {type: string}\n"
    "  children:\n    type: array\n    items: {$ref: './Node.yaml'}\n"
)
