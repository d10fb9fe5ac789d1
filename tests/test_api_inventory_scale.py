"""Real-world scale: multi-file specs of thousands of files under the default limits, each
limit named when crossed, and variants matched wherever they sit in their list."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from checks.api_inventory.diff import BreakingKind, ChangeKind, diff_inventories
from checks.api_inventory.params import ApiInventoryParams
from checks.api_inventory.reading import read_inventory_file
from checks.interface import BadInput
from checks.openapi.inventory import ApiInventory
from checks.openapi.loading import LoadLimits, SpecUnparseable
from checks.openapi.model import build_inventory
from tests.support.openapi_specs import SpecChanges, resource_count, write_multi_file_spec

RESOURCES = resource_count(1_600)


@pytest.fixture(scope="module")
def spec_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    before = write_multi_file_spec(tmp_path_factory.mktemp("before"), RESOURCES)
    after = write_multi_file_spec(
        tmp_path_factory.mktemp("after"),
        RESOURCES,
        changes=SpecChanges(insert_variant=True, public_resources=3, removed_resources=2),
    )
    return before, after


def files_under(directory: Path) -> int:
    return sum(1 for path in directory.rglob("*") if path.is_file())


@pytest.mark.integration
def test_a_2000_file_10_mb_multi_file_spec_loads_with_the_default_limits(tmp_path: Path) -> None:
    root = write_multi_file_spec(tmp_path, resource_count(2_000), padding=360)
    assert files_under(tmp_path) >= 2_000
    assert sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()) >= 10_000_000

    inventory = read_inventory_file(root)

    assert len(inventory.operations) == 4 * resource_count(2_000)
    assert inventory.problems == ()


@pytest.mark.integration
def test_a_multi_file_spec_of_1500_files_resolves_refs_across_folders_and_cycles(
    spec_pair: tuple[Path, Path],
) -> None:
    before, _ = spec_pair
    assert files_under(before.parent) >= 1_500

    inventory = read_inventory_file(before)

    operations = inventory.by_key()
    create = operations["POST /v1/res0001"]
    assert create.request_body_required
    assert ("#/properties/status", ("active", "paused", "closed")) in create.request_enums
    assert operations["GET /v1/res0001"].parameters[0].name == "limit"  # common/parameters
    assert operations["DELETE /v1/res0001/{}"].parameters[0].name == "id"  # path-level $ref
    # Resource <-> partner Resource and Node -> Node are cycles: still finite digests
    assert operations["GET /v1/res0000/{}"].responses[0][1] is not None
    assert inventory.problems == ()


@pytest.mark.integration
def test_inserting_a_oneof_variant_in_a_multi_file_spec_is_variant_added_not_enums_removed(
    spec_pair: tuple[Path, Path],
) -> None:
    before, after = (read_inventory_file(path) for path in spec_pair)

    changes = diff_inventories(before, after)

    details = [c.detail for c in changes]
    assert not [d for d in details if d.startswith(BreakingKind.ENUM_VALUE_REMOVED)]
    added = [d for d in details if d.startswith(BreakingKind.REQUEST_VARIANT_ADDED)]
    assert len(added) == RESOURCES
    assert added[0].endswith("oneOf kind=voucher")
    removed = {c.operation_key for c in changes if c.kind is ChangeKind.OPERATION_REMOVED}
    assert len(removed) == 4  # GET and DELETE of the last two resources
    public = {c.operation_key for c in changes if c.kind is ChangeKind.SECURITY_REMOVED}
    assert len(public) == 3 * 4


@pytest.mark.integration
def test_a_3_1_multi_file_spec_reads_type_arrays_and_const_tagged_variants(
    tmp_path: Path,
) -> None:
    resources = resource_count(1_500)
    old = write_multi_file_spec(tmp_path / "old", resources, openapi="3.1.0")
    new = write_multi_file_spec(
        tmp_path / "new", resources, openapi="3.1.0", changes=SpecChanges(insert_variant=True)
    )

    before, after = read_inventory_file(old), read_inventory_file(new)

    assert before.openapi_version == "3.1.0"
    assert before.problems == ()
    create = before.by_key()["POST /v1/res0000"]
    variants = dict(create.request_variants)["#/properties/payment/oneOf"]
    assert sorted(variants) == ["kind=bank", "kind=card", "kind=wallet"]
    details = [c.detail for c in diff_inventories(before, after)]
    assert not [d for d in details if "enum value removed" in d]
    assert len([d for d in details if d.startswith("request variant added")]) == resources


@pytest.mark.integration
def test_a_hostile_spec_naming_thousands_of_files_fails_fast_at_the_file_limit(
    tmp_path: Path,
) -> None:
    count = 5_200
    for index in range(count):
        (tmp_path / f"p{index}.yaml").write_text("get: {responses: {'200': {description: ok}}}\n")
    paths = "".join(f"  /p{index}: {{$ref: 'p{index}.yaml'}}\n" for index in range(count))
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"openapi: 3.0.0\ninfo: {{title: t, version: '1'}}\npaths:\n{paths}")

    with pytest.raises(BadInput, match=r"more than 5000 other files \(limit max_files = 5000\)"):
        read_inventory_file(spec)

    assert len(read_inventory_file(spec, LoadLimits(max_files=6_000)).operations) == count


def spec(body_schema: object, components: object = None) -> ApiInventory:
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "components": {"schemas": components or {}},
        "paths": {
            "/pay": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": body_schema}}},
                    "responses": {"204": {"description": "ok"}},
                }
            }
        },
    }
    return build_inventory(yaml.safe_load(yaml.safe_dump(document)), "spec.yaml")


def variant(kind: str, *networks: str) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {"kind": {"const": kind}, "network": {"enum": list(networks)}},
    }


@pytest.mark.unit
def test_a_variant_inserted_or_reordered_is_variant_added_never_a_cascade_of_removals() -> None:
    card, bank = variant("card", "visa", "amex"), variant("bank", "sepa", "ach")
    before = spec({"oneOf": [card, bank], "discriminator": {"propertyName": "kind"}})
    inserted = spec(
        {
            "oneOf": [variant("voucher", "gift"), bank, card],
            "discriminator": {"propertyName": "kind"},
        }
    )

    changes = diff_inventories(before, inserted)

    assert [c.detail for c in changes if "schema changed" not in c.detail] == [
        "request variant added: request body #/oneOf kind=voucher"
    ]


@pytest.mark.unit
def test_variants_named_by_ref_match_by_target_and_a_removed_one_is_breaking() -> None:
    components = {"Card": variant("card", "visa"), "Bank": variant("bank", "sepa")}
    refs = [{"$ref": "#/components/schemas/Card"}, {"$ref": "#/components/schemas/Bank"}]
    before = spec({"anyOf": refs}, components)
    after = spec({"anyOf": [refs[1]]}, components)

    changes = diff_inventories(before, after)

    removed = [c for c in changes if BreakingKind.REQUEST_VARIANT_REMOVED in c.detail]
    assert [c.detail for c in removed] == [
        "request variant removed: request body #/anyOf kind=card"
    ]
    assert removed[0].severity.value == "medium"


@pytest.mark.unit
def test_variants_with_titles_match_by_title_whatever_their_order() -> None:
    def titled(title: str, *colours: str) -> dict[str, object]:
        return {"title": title, "type": "object", "properties": {"c": {"enum": list(colours)}}}

    before = spec({"oneOf": [titled("Card", "red", "blue"), titled("Bank", "green")]})
    after = spec(
        {"oneOf": [titled("Voucher", "gold"), titled("Bank", "green"), titled("Card", "red")]}
    )

    details = [c.detail for c in diff_inventories(before, after) if "schema" not in c.detail]

    assert sorted(details) == [
        "enum value removed: request body #/oneOf/title=Card/properties/c blue",
        "request variant added: request body #/oneOf title=Voucher",
    ]


@pytest.mark.unit
def test_a_variant_that_changed_shape_is_matched_by_similarity_and_its_enums_compared() -> None:
    def shaped(*names: str, colour: list[str]) -> dict[str, object]:
        properties: dict[str, object] = {name: {"type": "string"} for name in names}
        properties["colour"] = {"enum": colour}
        return {"type": "object", "properties": properties}

    before = spec({"oneOf": [shaped("a", "b", colour=["red", "blue"]), {"type": "string"}]})
    after = spec({"oneOf": [{"type": "string"}, shaped("a", "b", "c", colour=["red"])]})

    details = [c.detail for c in diff_inventories(before, after) if "schema" not in c.detail]

    assert len(details) == 1
    assert details[0].startswith("enum value removed: request body #/oneOf/props=a,b,colour")
    assert details[0].endswith("blue")


@pytest.mark.unit
def test_reordered_parameters_and_security_alternatives_are_no_change() -> None:
    def document(parameters: list[object], security: list[object]) -> ApiInventory:
        return build_inventory(
            {
                "openapi": "3.0.3",
                "info": {"title": "t", "version": "1"},
                "components": {
                    "securitySchemes": {
                        "key": {"type": "apiKey", "in": "header", "name": "k"},
                        "oauth": {"type": "oauth2"},
                    }
                },
                "paths": {
                    "/x": {
                        "get": {
                            "parameters": parameters,
                            "security": security,
                            "responses": {"200": {"description": "ok"}},
                        }
                    }
                },
            },
            "spec.yaml",
        )

    a = {"name": "a", "in": "query", "schema": {"type": "string", "enum": ["x", "y"]}}
    b = {"name": "a", "in": "header", "schema": {"type": "integer"}}
    first = document([a, b], [{"key": []}, {"oauth": ["read", "write"]}])
    second = document([b, a], [{"oauth": ["write", "read"]}, {"key": []}])

    assert diff_inventories(first, second) == ()


LIMIT_CASES = [
    ("max_files", {"max_files": 10}, "other files (limit max_files = 10)"),
    ("max_total_bytes", {"max_total_bytes": 20_000}, "(limit max_total_bytes = 20000)"),
    ("max_resolved_nodes", {"max_resolved_nodes": 500}, "(limit max_resolved_nodes = 500)"),
    ("time_budget", {"time_budget": 0.0}, "(limit time_budget = 0)"),
]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "setting", "message"), LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES]
)
def test_each_limit_is_named_in_the_error_when_a_spec_crosses_it(
    spec_pair: tuple[Path, Path], name: str, setting: dict[str, float], message: str
) -> None:
    started = time.monotonic()
    with pytest.raises(BadInput) as raised:
        read_inventory_file(spec_pair[0], LoadLimits(**setting))  # type: ignore[arg-type]

    assert message in str(raised.value), name
    assert time.monotonic() - started < 60  # fails fast; generous for a loaded machine


@pytest.mark.unit
def test_the_per_file_size_and_alias_limits_are_named_too(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("openapi: 3.0.0\ninfo: &i {title: t, version: '1'}\nx-copy: *i\npaths: {}\n")

    with pytest.raises(SpecUnparseable, match=r"limit max_spec_bytes = 10\)"):
        read_inventory_file(spec, LoadLimits(max_bytes=10))
    with pytest.raises(SpecUnparseable, match=r"limit max_yaml_nodes = 5\)"):
        read_inventory_file(spec, LoadLimits(max_yaml_nodes=5))


@pytest.mark.unit
def test_a_chain_of_refs_names_the_depth_limit(tmp_path: Path) -> None:
    for index in range(5):
        (tmp_path / f"s{index}.yaml").write_text(f"$ref: 's{index + 1}.yaml'\n")
    (tmp_path / "s5.yaml").write_text("type: string\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n"
        "      parameters: [{name: q, in: query, schema: {$ref: 's0.yaml'}}]\n"
        "      responses: {'200': {description: ok}}\n"
    )

    assert read_inventory_file(spec).operations
    with pytest.raises(BadInput, match=r"limit max_ref_depth = 3\)"):
        read_inventory_file(spec, LoadLimits(max_ref_depth=3))


@pytest.mark.unit
def test_limits_are_set_per_target_under_limits() -> None:
    params = ApiInventoryParams.model_validate(
        {
            "spec": "openapi.yaml",
            "max_spec_bytes": 1000,
            "limits": {"max_files": 9000, "max_total_bytes": 5, "time_budget": "90s"},
        }
    )

    limits = params.limits.load_limits(params.max_spec_bytes)

    assert (limits.max_bytes, limits.max_files, limits.max_total_bytes) == (1000, 9000, 5)
    assert limits.time_budget == 90.0
    with pytest.raises(ValueError, match="max_file"):
        ApiInventoryParams.model_validate({"spec": "x", "limits": {"max_file": 1}})
