"""Reading OpenAPI documents into inventories: versions, formats, $refs, and hostile input."""

from __future__ import annotations

import json
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from checks.api_inventory.reading import read_inventory_file, read_inventory_url
from checks.egress import EgressPolicy
from checks.interface import BadInput, TargetUnreachable
from checks.openapi import loading
from checks.openapi.inventory import (
    ApiInventory,
    Operation,
    Parameter,
    ParameterLocation,
    SecurityRequirement,
)
from checks.openapi.loading import LoadLimits, SpecUnparseable, fetch_spec, load_document
from checks.openapi.model import build_inventory, template_of
from checks.openapi.refs import CYCLE_MARK, RefResolver
from tests.support.http_servers import Reply, ScriptedHttpServer

LIMITS = LoadLimits()


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def from_yaml(text: str) -> ApiInventory:
    document = load_document(textwrap.dedent(text).encode(), "spec.yaml", LIMITS)
    return build_inventory(document, "spec.yaml")


def operation(inventory: ApiInventory, key: str) -> Operation:
    return inventory.by_key()[key]


PETSTORE_30 = """\
openapi: 3.0.3
info: {title: Pets, version: 1.0.0}
servers:
  - url: https://{region}.example.com/{base}/
    variables:
      region: {default: eu}
      base: {default: v1}
security:
  - oauth: [write, read]
paths:
  /pets/{petId}:
    parameters:
      - {name: petId, in: path, required: true, schema: {type: string}}
      - {name: verbose, in: query, schema: {type: boolean}}
      - {name: X-Trace, in: header, schema: {type: string}}
    get:
      operationId: getPet
      parameters:
        - {name: verbose, in: query, required: true, schema: {type: integer}}
        - {name: x-trace, in: header, required: true, schema: {type: string}}
      responses:
        '200':
          description: the pet
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Pet'}
    put:
      security: []
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Pet'}
          application/xml:
            schema: {type: string}
      responses:
        default: {description: whatever}
    delete:
      deprecated: true
      x-sunset: 2025-06-30
      security:
        - {}
        - apiKey: []
      responses:
        '204': {description: gone}
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {}}
    apiKey: {type: apiKey, in: header, name: X-Key}
  schemas:
    Pet:
      type: object
      required: [name]
      properties:
        name: {type: string}
        status: {type: string, enum: [available, sold]}
        kind: {$ref: '#/components/schemas/Kind'}
    Kind: {type: string, enum: [cat, dog], nullable: true}
"""


@pytest.mark.unit
def test_openapi_3_0_yaml_becomes_an_inventory_of_its_operations() -> None:
    inventory = from_yaml(PETSTORE_30)

    assert (inventory.title, inventory.version, inventory.openapi_version) == (
        "Pets",
        "1.0.0",
        "3.0.3",
    )
    assert inventory.servers == ("https://eu.example.com/v1/",)
    assert inventory.base_path == "/v1"
    assert inventory.security_schemes == {"oauth": "oauth2", "apiKey": "apiKey"}
    assert inventory.problems == ()
    assert [op.key for op in inventory.operations] == [
        "GET /pets/{}",
        "PUT /pets/{}",
        "DELETE /pets/{}",
    ]
    put = operation(inventory, "PUT /pets/{}")
    assert put.request_body_required
    assert put.request_media_types == ("application/json", "application/xml")
    assert put.request_enums == (
        ("#/properties/kind", ("cat", "dog")),
        ("#/properties/status", ("available", "sold")),
    )
    delete = operation(inventory, "DELETE /pets/{}")
    assert delete.deprecated
    assert delete.sunset == "2025-06-30"


@pytest.mark.unit
def test_operation_parameters_override_path_parameters_by_name_and_location() -> None:
    get = operation(from_yaml(PETSTORE_30), "GET /pets/{}")

    assert get.parameters == (
        Parameter("x-trace", ParameterLocation.HEADER, True, "string"),
        Parameter("petId", ParameterLocation.PATH, True, "string"),
        Parameter("verbose", ParameterLocation.QUERY, True, "integer"),
    )


@pytest.mark.unit
def test_operation_security_overrides_global_and_an_empty_list_means_public() -> None:
    inventory = from_yaml(PETSTORE_30)

    get = operation(inventory, "GET /pets/{}")
    assert get.security == (SecurityRequirement((("oauth", ("read", "write")),)),)
    assert not get.public
    put = operation(inventory, "PUT /pets/{}")
    assert put.security == ()
    assert put.public
    delete = operation(inventory, "DELETE /pets/{}")
    assert delete.security == (
        SecurityRequirement(()),
        SecurityRequirement((("apiKey", ()),)),
    )
    assert delete.public


@pytest.mark.unit
def test_no_security_declared_anywhere_is_none() -> None:
    inventory = from_yaml(
        """\
        openapi: 3.0.0
        info: {title: t, version: '1'}
        paths:
          /a: {get: {responses: {'200': {description: ok}}}}
        """
    )

    assert operation(inventory, "GET /a").security is None


@pytest.mark.unit
def test_json_and_yaml_of_the_same_document_give_the_same_inventory() -> None:
    document = load_document(PETSTORE_30.encode(), "spec.yaml", LIMITS)
    as_json = json.dumps(document, indent=2).encode()

    from_json_text = build_inventory(load_document(as_json, "spec.json", LIMITS), "spec.json")

    assert from_json_text == build_inventory(document, "spec.yaml")


@pytest.mark.unit
def test_digests_do_not_depend_on_key_order_and_change_with_content() -> None:
    reordered = PETSTORE_30.replace(
        "        name: {type: string}\n        status: {type: string, enum: [available, sold]}",
        "        status: {enum: [available, sold], type: string}\n        name: {type: string}",
    )
    changed = PETSTORE_30.replace("enum: [available, sold]", "enum: [available]")

    original = operation(from_yaml(PETSTORE_30), "PUT /pets/{}")
    assert operation(from_yaml(reordered), "PUT /pets/{}").request_schema == (
        original.request_schema
    )
    after = operation(from_yaml(changed), "PUT /pets/{}")
    assert after.request_schema != original.request_schema
    assert ("#/properties/status", ("available",)) in after.request_enums


@pytest.mark.unit
def test_a_schema_inlined_or_referenced_has_the_same_digest() -> None:
    inlined = from_yaml(
        """\
        openapi: 3.0.0
        info: {title: t, version: '1'}
        paths:
          /a:
            get:
              responses:
                '200':
                  description: ok
                  content:
                    application/json:
                      schema: {type: object, properties: {id: {type: integer}}}
        """
    )
    referenced = from_yaml(
        """\
        openapi: 3.0.0
        info: {title: t, version: '1'}
        paths:
          /a:
            get:
              responses:
                '200':
                  description: ok
                  content:
                    application/json: {schema: {$ref: '#/components/schemas/A'}}
        components:
          schemas:
            A: {type: object, properties: {id: {$ref: '#/components/schemas/Id'}}}
            Id: {type: integer}
        """
    )

    assert operation(inlined, "GET /a").responses == operation(referenced, "GET /a").responses


@pytest.mark.unit
def test_openapi_3_1_type_arrays_with_null_become_type_or_null() -> None:
    inventory = from_yaml(
        """\
        openapi: 3.1.0
        info: {title: t, version: '2'}
        webhooks: {}
        paths:
          /items:
            get:
              parameters:
                - {name: q, in: query, schema: {type: [string, 'null']}}
                - {name: n, in: query, schema: {type: ['null', integer, number]}}
                - {name: c, in: cookie, schema: {type: string, enum: [a, 1, true, null]}}
              responses: {'200': {description: ok}}
        """
    )

    assert operation(inventory, "GET /items").parameters == (
        Parameter("c", ParameterLocation.COOKIE, False, "string", ("a", "1", "true", "null")),
        Parameter("n", ParameterLocation.QUERY, False, "integer|number|null"),
        Parameter("q", ParameterLocation.QUERY, False, "string|null"),
    )
    assert inventory.problems == ()


SWAGGER_20 = """\
swagger: '2.0'
info: {title: Legacy, version: '0.9'}
host: api.example.com
basePath: /v2
schemes: [https, http]
consumes: [application/json]
securityDefinitions:
  basic: {type: basic}
  key: {type: apiKey, in: header, name: X-Key}
security:
  - basic: []
parameters:
  Limit: {name: limit, in: query, type: integer, enum: [10, 50]}
paths:
  /users/{id}/:
    parameters:
      - {name: id, in: path, required: true, type: string}
    post:
      security: [{key: []}]
      parameters:
        - {$ref: '#/parameters/Limit'}
        - name: body
          in: body
          required: true
          schema: {$ref: '#/definitions/User'}
      responses:
        200: {description: ok, schema: {$ref: '#/definitions/User'}}
  /upload:
    post:
      consumes: [multipart/form-data]
      parameters:
        - {name: file, in: formData, type: file, required: true}
        - {name: kind, in: formData, type: string, enum: [photo, scan]}
      responses:
        201: {description: stored}
definitions:
  User:
    type: object
    properties:
      role: {type: string, enum: [admin, user]}
"""


@pytest.mark.unit
def test_swagger_2_document_becomes_an_inventory() -> None:
    inventory = from_yaml(SWAGGER_20)

    assert inventory.openapi_version == "2.0"
    assert inventory.servers == ("https://api.example.com/v2", "http://api.example.com/v2")
    assert inventory.base_path == "/v2"
    assert inventory.security_schemes == {"basic": "basic", "key": "apiKey"}
    assert inventory.problems == ()
    user = operation(inventory, "POST /users/{}/")
    assert user.parameters == (
        Parameter("id", ParameterLocation.PATH, True, "string"),
        Parameter("limit", ParameterLocation.QUERY, False, "integer", ("10", "50")),
    )
    assert user.request_body_required
    assert user.request_media_types == ("application/json",)
    assert user.request_enums == (("#/properties/role", ("admin", "user")),)
    assert user.security == (SecurityRequirement((("key", ()),)),)
    assert user.responses[0][0] == "200"
    assert user.responses[0][1] == user.request_schema
    upload = operation(inventory, "POST /upload")
    assert upload.security == (SecurityRequirement((("basic", ()),)),)
    assert upload.request_media_types == ("multipart/form-data",)
    assert upload.request_body_required
    assert upload.request_enums == (("#/properties/kind", ("photo", "scan")),)
    assert upload.request_schema is not None


@pytest.mark.unit
def test_templates_drop_parameter_names_but_keep_query_and_trailing_slash() -> None:
    inventory = from_yaml(
        """\
        openapi: 3.0.0
        info: {title: t, version: '1'}
        paths:
          /search?type=user: {get: {responses: {'200': {description: ok}}}}
          /search?type=group: {get: {responses: {'200': {description: ok}}}}
          /search: {get: {responses: {'200': {description: ok}}}}
          /users/{userId}/: {get: {responses: {'200': {description: ok}}}}
        """
    )

    assert sorted(inventory.by_key()) == [
        "GET /search",
        "GET /search?type=group",
        "GET /search?type=user",
        "GET /users/{}/",
    ]
    assert template_of("/users/{id}") == template_of("/users/{userId}") == "/users/{}"


@pytest.mark.unit
def test_two_paths_with_the_same_template_are_a_problem() -> None:
    inventory = from_yaml(
        """\
        openapi: 3.0.0
        info: {title: t, version: '1'}
        paths:
          /users/{id}: {get: {responses: {'200': {description: ok}}}}
          /users/{userId}: {get: {responses: {'200': {description: ok}}}}
        """
    )

    assert len(inventory.operations) == 2
    assert any("same template /users/{}" in problem for problem in inventory.problems)


@pytest.mark.unit
def test_unquoted_timestamps_and_yes_no_stay_strings() -> None:
    document = load_document(
        b"version: 2024-01-01\nwhen: 2024-01-01T10:00:00Z\nenum: [yes, no, on]\nflag: true\n",
        "x.yaml",
        LIMITS,
    )

    assert document == {
        "version": "2024-01-01",
        "when": "2024-01-01T10:00:00Z",
        "enum": ["yes", "no", "on"],
        "flag": True,
    }


@pytest.mark.unit
def test_a_redefined_yaml_anchor_means_its_newest_definition() -> None:
    document = load_document(b"a: &x 1\nb: *x\nc: &x 2\nd: *x\n", "x.yaml", LIMITS)

    assert document == {"a": 1, "b": 1, "c": 2, "d": 2}


@pytest.mark.unit
def test_an_invalid_spec_still_yields_an_inventory_with_its_problems() -> None:
    inventory = from_yaml(
        """\
        openapi: 3.0.0
        info: {title: t, version: '1'}
        foo: bar
        x-fine: ok
        paths:
          /x:
            get: {summary: no responses}
            post: just a string
            GET: {responses: {}}
          /y:
            get:
              parameters: [{in: query}]
              responses: {'200': {$ref: '#/components/responses/Missing'}}
        """
    )

    assert [op.key for op in inventory.operations] == ["GET /x", "GET /y"]
    assert inventory.problems == (
        "unknown top-level key 'foo'",
        "paths./x: unknown key 'GET'",
        "paths./x.get.responses is missing",
        "paths./x.post is not a mapping",
        "paths./y.get.parameters[0] has no 'name' and 'in'",
        "$ref '#/components/responses/Missing' in the root document does not resolve",
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "the top level is str"),
        (b"", "the top level is NoneType"),
        (b"- a\n- b\n", "the top level is list"),
    ],
)
def test_a_document_that_is_not_a_mapping_is_refused(text: bytes, message: str) -> None:
    with pytest.raises(SpecUnparseable, match=message):
        build_inventory(load_document(text, "page", LIMITS), "page")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "where"),
    [
        (b'{"openapi": "3.0.0",\n "info": {,}}', "line 2 column 11"),
        (b"openapi: 3.0.0\ninfo: [a, b\npaths: {}\n", "line 3 column 6"),
        (b"a: 1\n b: 2\n", "line 2 column 3"),
    ],
)
def test_a_parse_error_names_line_and_column(text: bytes, where: str) -> None:
    with pytest.raises(SpecUnparseable, match=where) as raised:
        load_document(text, "broken.yaml", LIMITS)

    assert raised.value.subject == "broken.yaml"


@pytest.mark.unit
def test_a_recursive_yaml_alias_is_refused() -> None:
    with pytest.raises(SpecUnparseable, match="inside its own anchor"):
        load_document(b"a: &x [1, *x]\n", "x.yaml", LIMITS)


@pytest.mark.unit
def test_a_billion_laughs_yaml_fails_with_a_clear_message() -> None:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 10):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 10)}]")
    bomb = ("\n".join(lines) + "\n").encode()

    with pytest.raises(SpecUnparseable, match="alias bomb"):
        load_document(bomb, "bomb.yaml", LIMITS)


@pytest.mark.unit
def test_merge_keys_are_counted_like_aliases() -> None:
    lines = ["a: &a {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8, k9: 9}"]
    for level in range(1, 10):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} {{<<: [{', '.join(['*' + previous] * 10)}]}}")

    with pytest.raises(SpecUnparseable, match="alias bomb"):
        load_document(("\n".join(lines) + "\n").encode(), "merge.yaml", LIMITS)


@pytest.mark.unit
def test_a_document_over_the_size_limit_is_refused_before_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_parsing(*args: Any) -> Any:
        raise AssertionError("parsed a document over the limit")

    monkeypatch.setattr(loading, "_load_json", no_parsing)
    monkeypatch.setattr(loading, "_load_yaml", no_parsing)

    with pytest.raises(SpecUnparseable, match="over the limit of 1000; not parsed"):
        load_document(b"{" + b" " * 2000 + b"}", "big.json", LoadLimits(max_bytes=1000))


@pytest.mark.unit
def test_a_200_mb_spec_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    with spec.open("wb") as file:
        file.write(b"openapi: 3.0.0\n")
        file.seek(200 * 1024 * 1024)
        file.write(b"\n")

    tracemalloc.start()
    try:
        with pytest.raises(SpecUnparseable, match="over the limit of 52428800; not read"):
            read_inventory_file(spec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 10 * 1024 * 1024


@pytest.mark.unit
def test_a_multi_file_spec_follows_relative_refs_to_operations_and_properties(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        "openapi.yaml",
        """\
        openapi: 3.0.3
        info: {title: split, version: '1'}
        paths:
          /orders:
            $ref: 'paths/orders.yaml'
          /orders/{id}:
            get:
              $ref: './operations/get-order.yaml'
        components:
          schemas:
            Order:
              type: object
              properties:
                $ref: 'common/schemas.json#/OrderProperties'
        """,
    )
    write(
        tmp_path,
        "paths/orders.yaml",
        """\
        post:
          requestBody:
            content:
              application/json:
                schema: {$ref: '../openapi.yaml#/components/schemas/Order'}
          responses:
            '201': {$ref: '../common/responses.yaml#/Created'}
        """,
    )
    write(
        tmp_path,
        "operations/get-order.yaml",
        """\
        operationId: getOrder
        parameters:
          - {$ref: '../common/parameters.yaml#/Id'}
        responses:
          '200':
            description: ok
            content:
              application/json:
                schema: {$ref: '../openapi.yaml#/components/schemas/Order'}
        """,
    )
    write(tmp_path, "common/parameters.yaml", "Id: {name: id, in: path, schema: {type: integer}}\n")
    write(tmp_path, "common/responses.yaml", "Created: {description: created}\n")
    (tmp_path / "common/schemas.json").write_text(
        json.dumps({"OrderProperties": {"state": {"type": "string", "enum": ["new", "paid"]}}})
    )

    inventory = read_inventory_file(tmp_path / "openapi.yaml")

    assert inventory.problems == ()
    post = operation(inventory, "POST /orders")
    assert post.request_enums == (("#/properties/state", ("new", "paid")),)
    assert post.responses == (("201", None),)
    get = operation(inventory, "GET /orders/{}")
    assert get.operation_id == "getOrder"
    assert get.parameters == (Parameter("id", ParameterLocation.PATH, True, "integer"),)
    assert get.responses == (("200", post.request_schema),)


CYCLIC = """\
openapi: 3.0.0
info: {title: cycles, version: '1'}
paths:
  /nodes:
    post:
      requestBody:
        content:
          application/json: {schema: {$ref: '#/components/schemas/Node'}}
      responses:
        '200':
          description: ok
          content:
            application/json: {schema: {$ref: '#/components/schemas/Parent'}}
  /children:
    get:
      responses:
        '200':
          description: ok
          content:
            application/json: {schema: {$ref: '#/components/schemas/Child'}}
components:
  schemas:
    Node:
      type: object
      properties:
        kind: {type: string, enum: [leaf, branch]}
        children: {type: array, items: {$ref: '#/components/schemas/Node'}}
    Parent:
      type: object
      properties: {child: {$ref: '#/components/schemas/Child'}}
    Child:
      type: object
      properties: {parent: {$ref: '#/components/schemas/Parent'}, name: {type: string}}
"""


@pytest.mark.unit
def test_self_and_mutually_recursive_schemas_resolve_to_finite_digests() -> None:
    inventory = from_yaml(CYCLIC)

    nodes = operation(inventory, "POST /nodes")
    assert nodes.request_schema is not None
    assert nodes.request_enums == (("#/properties/kind", ("leaf", "branch")),)
    parent = dict(nodes.responses)["200"]
    child = dict(operation(inventory, "GET /children").responses)["200"]
    assert parent is not None
    assert child is not None
    assert parent != child
    assert inventory.problems == ()


@pytest.mark.unit
def test_cyclic_digests_do_not_depend_on_which_operation_comes_first() -> None:
    swapped = CYCLIC.replace("/nodes:", "/tmp:").replace("/children:", "/nodes:")
    swapped = swapped.replace("/tmp:", "/children:")

    first = {op.key: op for op in from_yaml(CYCLIC).operations}
    second = {op.key: op for op in from_yaml(swapped).operations}

    assert dict(first["GET /children"].responses) == dict(second["GET /nodes"].responses)


@pytest.mark.unit
def test_a_change_inside_a_cycle_changes_the_digest_of_every_member() -> None:
    changed = CYCLIC.replace("name: {type: string}", "name: {type: integer}")

    before, after = from_yaml(CYCLIC), from_yaml(changed)

    assert dict(operation(before, "POST /nodes").responses) != dict(
        operation(after, "POST /nodes").responses
    )


@pytest.mark.unit
def test_a_property_named_ref_is_a_property_not_a_reference() -> None:
    inventory = from_yaml(
        """\
        openapi: 3.0.0
        info: {title: t, version: '1'}
        paths:
          /a:
            post:
              requestBody:
                content:
                  application/json: {schema: {$ref: '#/components/schemas/A'}}
              responses: {'200': {description: ok}}
        components:
          schemas:
            A:
              type: object
              properties:
                $ref: {$ref: '#/components/schemas/A'}
                mode: {type: string, enum: [on, off]}
        """
    )

    post = operation(inventory, "POST /a")
    assert post.request_schema is not None
    assert post.request_enums == (("#/properties/mode", ("on", "off")),)


@pytest.mark.unit
def test_a_recursive_schema_view_marks_the_cycle_instead_of_recursing() -> None:
    document = load_document(CYCLIC.encode(), "spec.yaml", LIMITS)
    resolver = RefResolver(document, "spec.yaml")

    view = resolver.schema_view({"$ref": "#/components/schemas/Node"}, "")

    assert view["properties"]["children"]["items"] == {
        "$ref": "#/components/schemas/Node",
        CYCLE_MARK: True,
    }


@pytest.mark.unit
def test_json_pointer_escapes_and_refs_into_paths_resolve() -> None:
    inventory = from_yaml(
        """\
        openapi: 3.0.0
        info: {title: t, version: '1'}
        paths:
          /a/{id}:
            get:
              responses:
                '200':
                  description: ok
                  content:
                    application/json: {schema: {$ref: '#/components/schemas/a~1b~0c'}}
          /b/{id}:
            get: {$ref: '#/paths/~1a~1%7Bid%7D/get'}
        components:
          schemas:
            a/b~c: {type: string, enum: [x]}
        """
    )

    assert inventory.problems == ()
    assert operation(inventory, "GET /a/{}").responses[0][1] is not None
    assert (
        operation(inventory, "GET /b/{}").responses == operation(inventory, "GET /a/{}").responses
    )


@pytest.mark.unit
def test_a_ref_to_itself_is_a_clear_error() -> None:
    document = {
        "openapi": "3.0.0",
        "info": {"title": "t", "version": "1"},
        "a": {"$ref": "#/a"},
        "paths": {"/x": {"get": {"responses": {"200": {"$ref": "#/a"}}}}},
    }

    with pytest.raises(BadInput, match="cycle with no content"):
        build_inventory(document, "spec.json")


@pytest.mark.unit
def test_a_chain_of_refs_longer_than_the_limit_is_refused() -> None:
    chain = {f"s{i}": {"$ref": f"#/components/schemas/s{i + 1}"} for i in range(10)}
    document = {
        "openapi": "3.0.0",
        "info": {"title": "t", "version": "1"},
        "components": {"schemas": {**chain, "s10": {"type": "string"}}},
        "paths": {"/x": {"get": {"parameters": [{"$ref": "#/components/schemas/s0"}]}}},
    }
    resolver = RefResolver(document, "spec.json", limits=LoadLimits(max_ref_depth=5))

    with pytest.raises(BadInput, match="chain of more than 5"):
        build_inventory(document, "spec.json", resolver=resolver)


@pytest.mark.unit
@pytest.mark.parametrize("ref", ["../../etc/passwd", "/etc/passwd", "file:///etc/passwd"])
def test_a_ref_to_a_file_outside_the_spec_directory_is_refused(tmp_path: Path, ref: str) -> None:
    spec = write(
        tmp_path / "api",
        "spec.yaml",
        f"""\
        openapi: 3.0.0
        info: {{title: t, version: '1'}}
        paths:
          /x: {{$ref: '{ref}'}}
        """,
    )

    with pytest.raises(BadInput, match="outside the spec's directory") as raised:
        read_inventory_file(spec)

    assert ref in str(raised.value)
    assert str(spec.resolve()) in str(raised.value)


@pytest.mark.unit
def test_a_symlink_leading_out_of_the_spec_directory_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "secret.yaml", "Pet: {type: string}\n")
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "pets.yaml").symlink_to(tmp_path / "secret.yaml")
    spec = tmp_path / "api" / "spec.yaml"
    spec.write_bytes(remote_spec("pets.yaml#/Pet"))

    with pytest.raises(BadInput, match="outside the spec's directory"):
        read_inventory_file(spec)


@pytest.mark.unit
def test_a_missing_referenced_file_is_bad_input(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        "spec.yaml",
        """\
        openapi: 3.0.0
        info: {title: t, version: '1'}
        paths:
          /x: {$ref: 'nowhere.yaml'}
        """,
    )

    with pytest.raises(BadInput, match=r"'nowhere\.yaml' cannot be read"):
        read_inventory_file(spec)


def remote_spec(ref: str) -> bytes:
    return textwrap.dedent(
        f"""\
        openapi: 3.0.0
        info: {{title: t, version: '1'}}
        paths:
          /pets:
            get:
              responses:
                '200':
                  description: ok
                  content:
                    application/json: {{schema: {{$ref: '{ref}'}}}}
        """
    ).encode()


@pytest.mark.unit
def test_remote_refs_are_refused_unless_enabled(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(remote_spec("http://127.0.0.1:9/schemas.yaml#/Pet"))

    with pytest.raises(BadInput, match="remote \\$refs are disabled") as raised:
        read_inventory_file(spec)
    assert "http://127.0.0.1:9/schemas.yaml" in str(raised.value)
    with pytest.raises(BadInput, match="not on the spec's origin \\(a local file\\)"):
        read_inventory_file(spec, allow_remote_refs=True)


@pytest.mark.integration
def test_remote_refs_on_the_spec_origin_work_and_other_origins_are_refused() -> None:
    schemas = b"Pet: {type: object, properties: {tag: {type: string, enum: [a, b]}}}\n"
    with ScriptedHttpServer() as server, ScriptedHttpServer() as other:
        server.replies["/api/spec.yaml"] = Reply(body=remote_spec("schemas.yaml#/Pet"))
        server.replies["/api/schemas.yaml"] = Reply(body=schemas)
        server.replies["/api/elsewhere.yaml"] = Reply(
            body=remote_spec(f"{other.url}/schemas.yaml#/Pet")
        )
        other.replies["/schemas.yaml"] = Reply(body=schemas)

        with pytest.raises(BadInput, match="remote \\$refs are disabled"):
            read_inventory_url(f"{server.url}/api/spec.yaml", timeout=5, egress=EgressPolicy())
        inventory = read_inventory_url(
            f"{server.url}/api/spec.yaml",
            timeout=5,
            allow_remote_refs=True,
            auth_header="Bearer token",
            egress=EgressPolicy(),
        )
        with pytest.raises(BadInput, match="not on the spec's origin") as raised:
            read_inventory_url(
                f"{server.url}/api/elsewhere.yaml",
                timeout=5,
                allow_remote_refs=True,
                egress=EgressPolicy(),
            )

    assert dict(operation(inventory, "GET /pets").responses)["200"] is not None
    assert inventory.problems == ()
    assert ("/api/schemas.yaml", "Bearer token") in [
        (path, headers.get("Authorization")) for path, headers in server.requests
    ]
    assert f"{other.url}/schemas.yaml" in str(raised.value)
    assert other.requests == []


@pytest.mark.integration
def test_fetch_spec_turns_error_statuses_into_check_errors() -> None:
    with ScriptedHttpServer() as server:
        server.replies["/down.json"] = Reply(status=503)
        with pytest.raises(BadInput, match="HTTP 404"):
            fetch_spec(f"{server.url}/missing.json", 5, 1000, egress=EgressPolicy())
        with pytest.raises(TargetUnreachable, match="HTTP 503"):
            fetch_spec(f"{server.url}/down.json", 5, 1000, egress=EgressPolicy())


@pytest.mark.unit
def test_the_time_budget_for_resolving_refs_is_enforced() -> None:
    class SteppingClock:
        def __init__(self) -> None:
            self.seconds = 0.0

        def now(self) -> Any:
            raise NotImplementedError

        def monotonic(self) -> float:
            self.seconds += 1.0
            return self.seconds

    schema = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(2000)}}
    resolver = RefResolver(
        {}, "spec.yaml", limits=LoadLimits(time_budget=0.5), clock=SteppingClock()
    )

    with pytest.raises(BadInput, match=r"took longer than 0\.5 s"):
        resolver.schema_view(schema, "")


@pytest.mark.unit
def test_operations_sharing_a_large_schema_resolve_it_once() -> None:
    properties = {f"field{i}": {"type": "string", "enum": ["x", "y"]} for i in range(500)}
    document: dict[str, Any] = {
        "openapi": "3.0.0",
        "info": {"title": "big", "version": "1"},
        "components": {"schemas": {"Big": {"type": "object", "properties": properties}}},
        "paths": {},
    }
    ref = {"$ref": "#/components/schemas/Big"}
    for i in range(2000):
        document["paths"][f"/things{i}"] = {
            "post": {
                "requestBody": {"content": {"application/json": {"schema": ref}}},
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": ref}}
                        },
                    }
                },
            }
        }
    # Copying the schema for each operation would walk more than 2,000 x 1,500 nodes.
    resolver = RefResolver(document, "big.json", limits=LoadLimits(max_resolved_nodes=200_000))

    inventory = build_inventory(document, "big.json", resolver=resolver)

    assert len({op.request_schema for op in inventory.operations}) == 1
    assert len(inventory.operations[0].request_enums) == 500


@pytest.mark.unit
def test_the_resolved_node_limit_is_enforced() -> None:
    document = load_document(PETSTORE_30.encode(), "spec.yaml", LIMITS)
    resolver = RefResolver(document, "spec.yaml", limits=LoadLimits(max_resolved_nodes=10))

    with pytest.raises(BadInput, match="more than 10 nodes"):
        build_inventory(document, "spec.yaml", resolver=resolver)


@pytest.mark.unit
def test_the_number_of_referenced_files_is_limited(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "A: {$ref: 'b.yaml#/B'}\n")
    write(tmp_path, "b.yaml", "B: {type: string}\n")
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(remote_spec("a.yaml#/A"))

    assert read_inventory_file(spec, LoadLimits(max_files=2)).problems == ()
    with pytest.raises(BadInput, match=r"more than 1 other files \(limit max_files = 1\)"):
        read_inventory_file(spec, LoadLimits(max_files=1))
