"""diff_inventories and group_changes on inventories built by hand."""

from __future__ import annotations

import re
from typing import Any

import pytest

from checks.api_inventory.diff import (
    OTHER_PATHS,
    Axis,
    BreakingKind,
    Change,
    ChangeKind,
    diff_inventories,
    group_changes,
)
from checks.openapi.inventory import (
    ApiInventory,
    Operation,
    Parameter,
    ParameterLocation,
    SecurityRequirement,
)
from monitor.model import Severity

pytestmark = pytest.mark.unit

SCHEMES = {"oauth": "oauth2", "key": "apiKey", "basic": "http"}
Scheme = str | tuple[str, tuple[str, ...]]


def req(*schemes: Scheme) -> SecurityRequirement:
    """`req("key", ("oauth", ("read",)))`: key AND oauth with scope read."""
    return SecurityRequirement(
        tuple((s, ()) if isinstance(s, str) else (s[0], tuple(sorted(s[1]))) for s in schemes)
    )


OAUTH = (req(("oauth", ("read",))),)


def op(method: str, path: str, **fields: Any) -> Operation:
    fields.setdefault("security", OAUTH)
    return Operation(method, path, re.sub(r"\{[^}]*\}", "{}", path), **fields)


def param(
    name: str,
    location: ParameterLocation = ParameterLocation.QUERY,
    required: bool = False,
    type: str | None = "string",
    enum: tuple[str, ...] = (),
) -> Parameter:
    return Parameter(name, location, required, type, enum)


def inventory(*operations: Operation, schemes: dict[str, str] | None = None) -> ApiInventory:
    return ApiInventory(
        title="shop",
        version="1",
        openapi_version="3.0.3",
        operations=operations,
        security_schemes=SCHEMES if schemes is None else schemes,
    )


def diff(before: Operation | list[Operation], after: Operation | list[Operation]) -> list[Change]:
    old = before if isinstance(before, list) else [before]
    new = after if isinstance(after, list) else [after]
    return list(diff_inventories(inventory(*old), inventory(*new)))


def only(changes: list[Change]) -> Change:
    assert len(changes) == 1, changes
    return changes[0]


def breaking(changes: list[Change], sub_kind: BreakingKind) -> Change:
    found = [c for c in changes if c.detail.startswith(f"{sub_kind}:")]
    return only(found)


# ---------------------------------------------------------------------------- identity


def test_identical_inventories_have_no_changes() -> None:
    operation = op("get", "/users/{id}", parameters=(param("id", ParameterLocation.PATH, True),))
    assert diff(operation, operation) == []


def test_renaming_a_path_parameter_is_no_change() -> None:
    before = op("get", "/users/{id}", parameters=(param("id", ParameterLocation.PATH, True),))
    after = op(
        "get", "/users/{userId}", parameters=(param("userId", ParameterLocation.PATH, True),)
    )
    assert diff(before, after) == []


def test_header_names_compare_without_case() -> None:
    header = ParameterLocation.HEADER
    before = op("get", "/a", parameters=(param("X-Tenant", header, True),))
    after = op("get", "/a", parameters=(param("x-tenant", header, True),))
    assert diff(before, after) == []


# ---------------------------------------------------------------------------- operations


def test_an_added_authenticated_operation_is_info_only() -> None:
    change = only(diff([], op("post", "/orders")))
    assert (change.kind, change.axis, change.severity) == (
        ChangeKind.OPERATION_ADDED,
        Axis.INFO,
        Severity.LOW,
    )
    assert change.operation_key == "POST /orders"


@pytest.mark.parametrize("security", [(), None, (req(),)], ids=["empty", "undeclared", "{}"])
def test_a_new_operation_without_security_is_unauthenticated(security: Any) -> None:
    changes = diff([], op("get", "/public", security=security))
    assert [c.kind for c in changes] == [
        ChangeKind.UNAUTHENTICATED_OPERATION,
        ChangeKind.OPERATION_ADDED,
    ]
    assert (changes[0].axis, changes[0].severity) == (Axis.SECURITY, Severity.HIGH)


def test_removing_an_operation_without_deprecating_it_first_is_high() -> None:
    change = only(diff(op("delete", "/users/{id}"), []))
    assert (change.kind, change.axis, change.severity) == (
        ChangeKind.OPERATION_REMOVED,
        Axis.BREAKING,
        Severity.HIGH,
    )
    assert "without prior deprecation" in change.detail


def test_removing_an_operation_deprecated_before_is_medium() -> None:
    change = only(diff(op("delete", "/users/{id}", deprecated=True, sunset="2025-01-01"), []))
    assert (change.kind, change.severity) == (ChangeKind.OPERATION_REMOVED, Severity.MEDIUM)
    assert change.before == "sunset 2025-01-01"


def test_a_newly_deprecated_operation_reports_its_sunset() -> None:
    change = only(diff(op("get", "/v1/a"), op("get", "/v1/a", deprecated=True, sunset="2026-06")))
    assert (change.kind, change.axis, change.severity) == (
        ChangeKind.OPERATION_DEPRECATED,
        Axis.INFO,
        Severity.LOW,
    )
    assert "sunset 2026-06" in change.detail
    assert change.after == "2026-06"


def test_an_operation_already_deprecated_is_not_reported_again() -> None:
    deprecated = op("get", "/v1/a", deprecated=True)
    assert diff(deprecated, deprecated) == []


# ---------------------------------------------------------------------------- breaking


def test_a_required_parameter_added_is_breaking_an_optional_one_is_not() -> None:
    before = op("get", "/items")
    after = op("get", "/items", parameters=(param("page"), param("tenant", required=True)))
    change = breaking(diff(before, after), BreakingKind.REQUIRED_PARAMETER_ADDED)
    assert (change.kind, change.axis, change.severity) == (
        ChangeKind.BREAKING_CHANGE,
        Axis.BREAKING,
        Severity.MEDIUM,
    )
    assert change.detail == "required parameter added: query tenant"


def test_a_removed_parameter_is_breaking() -> None:
    before = op("get", "/items", parameters=(param("page"),))
    change = only(diff(before, op("get", "/items")))
    assert change.detail == "parameter removed: query page"


def test_a_narrowed_parameter_type_is_breaking_a_widened_one_is_not() -> None:
    def with_type(kind: str | None) -> Operation:
        return op("get", "/items", parameters=(param("limit", type=kind),))

    change = only(diff(with_type("string"), with_type("integer")))
    assert change.detail.startswith(BreakingKind.PARAMETER_TYPE_CHANGED)
    assert (change.before, change.after) == ("string", "integer")
    assert diff(with_type("integer"), with_type("number")) == []
    assert diff(with_type("string"), with_type("string|null")) == []
    assert diff(with_type("string"), with_type(None)) == []


def test_a_parameter_that_became_required_is_breaking() -> None:
    before = op("get", "/items", parameters=(param("page"),))
    after = op("get", "/items", parameters=(param("page", required=True),))
    assert only(diff(before, after)).detail == "parameter became required: query page"


def test_a_removed_parameter_enum_value_is_breaking_an_added_one_is_not() -> None:
    def with_enum(*values: str) -> Operation:
        return op("get", "/items", parameters=(param("sort", enum=values),))

    change = only(diff(with_enum("asc", "desc"), with_enum("asc")))
    assert change.detail == "enum value removed: query sort desc"
    assert change.severity is Severity.MEDIUM
    assert diff(with_enum("asc"), with_enum("asc", "desc")) == []
    assert diff(with_enum("asc"), with_enum()) == []  # no enum: every value allowed


def test_a_removed_request_body_enum_value_is_breaking() -> None:
    before = op("post", "/orders", request_enums=(("/status", ("new", "paid", "void")),))
    after = op("post", "/orders", request_enums=(("/status", ("new", "paid")),))
    change = breaking(diff(before, after), BreakingKind.ENUM_VALUE_REMOVED)
    assert change.detail == "enum value removed: request body /status void"


def test_a_removed_response_status_is_breaking() -> None:
    before = op("get", "/items", responses=(("200", "d1"), ("404", "d2")))
    after = op("get", "/items", responses=(("200", "d1"),))
    change = only(diff(before, after))
    assert change.detail == "response status removed: 404"
    assert change.axis is Axis.BREAKING


def test_a_request_body_that_became_required_is_breaking() -> None:
    before = op("post", "/orders", request_media_types=("application/json",))
    after = op(
        "post", "/orders", request_media_types=("application/json",), request_body_required=True
    )
    change = only(diff(before, after))
    assert change.detail.startswith(BreakingKind.REQUEST_BODY_BECAME_REQUIRED)


def test_a_removed_request_media_type_is_breaking() -> None:
    before = op("post", "/orders", request_media_types=("application/json", "application/xml"))
    after = op("post", "/orders", request_media_types=("application/json",))
    assert only(diff(before, after)).detail == "request media type removed: application/xml"


def test_a_changed_schema_digest_is_only_a_low_info_change() -> None:
    before = op("post", "/orders", request_schema="aaa", responses=(("200", "r1"),))
    after = op("post", "/orders", request_schema="bbb", responses=(("200", "r2"),))
    changes = diff(before, after)
    assert {c.detail for c in changes} == {
        "request schema changed: request body",
        "response schema changed: 200",
    }
    assert {(c.kind, c.axis, c.severity) for c in changes} == {
        (ChangeKind.BREAKING_CHANGE, Axis.INFO, Severity.LOW)
    }


# ---------------------------------------------------------------------------- security


def test_security_removed_from_an_operation_is_critical() -> None:
    change = only(diff(op("get", "/admin"), op("get", "/admin", security=None)))
    assert (change.kind, change.axis, change.severity) == (
        ChangeKind.SECURITY_REMOVED,
        Axis.SECURITY,
        Severity.CRITICAL,
    )
    assert (change.before, change.after) == ("oauth[read]", "none declared")


def test_an_empty_security_override_on_one_operation_is_critical_for_that_operation() -> None:
    # Global security still applies to /b; the loader resolves `security: []` on /a to ().
    before = [op("get", "/a"), op("get", "/b")]
    after = [op("get", "/a", security=()), op("get", "/b")]
    change = only(diff(before, after))
    assert (change.kind, change.severity, change.operation_key) == (
        ChangeKind.SECURITY_REMOVED,
        Severity.CRITICAL,
        "GET /a",
    )


def test_an_emptied_requirement_is_security_removed() -> None:
    change = only(diff(op("get", "/a"), op("get", "/a", security=(req(),))))
    assert change.kind is ChangeKind.SECURITY_REMOVED


def test_an_alternative_without_auth_makes_the_operation_public() -> None:
    change = only(diff(op("get", "/a"), op("get", "/a", security=(*OAUTH, req()))))
    assert (change.kind, change.severity) == (ChangeKind.SECURITY_REMOVED, Severity.CRITICAL)


def test_an_operation_that_was_public_already_raises_no_security_change() -> None:
    assert diff(op("get", "/a", security=()), op("get", "/a", security=None)) == []


def test_a_scheme_removed_from_a_requirement_is_weakened() -> None:
    before = op("get", "/a", security=(req("key", "basic"),))
    after = op("get", "/a", security=(req("key"),))
    change = only(diff(before, after))
    assert (change.kind, change.axis, change.severity) == (
        ChangeKind.SECURITY_WEAKENED,
        Axis.SECURITY,
        Severity.HIGH,
    )
    assert change.detail == "scheme removed from requirement (basic): key"


def test_reduced_scopes_are_weakened_added_scopes_are_not() -> None:
    def scoped(*scopes: str) -> Operation:
        return op("get", "/a", security=(req(("oauth", scopes)),))

    change = only(diff(scoped("read", "write"), scoped("read")))
    assert change.kind is ChangeKind.SECURITY_WEAKENED
    assert change.detail == "scopes reduced: oauth[read]"
    assert (change.before, change.after) == ("oauth[read write]", "oauth[read]")
    assert diff(scoped("read"), scoped("read", "write")) == []


def test_an_alternative_with_fewer_schemes_is_weakened() -> None:
    before = op("get", "/a", security=(req("key", "oauth"),))
    after = op("get", "/a", security=(req("key", "oauth"), req("basic")))
    change = only(diff(before, after))
    assert change.kind is ChangeKind.SECURITY_WEAKENED
    assert change.detail == "alternative requirement added: basic"


def test_dropping_an_alternative_is_no_weakening() -> None:
    before = op("get", "/a", security=(req("key"), req("oauth")))
    assert diff(before, op("get", "/a", security=(req("oauth"),))) == []


def test_a_scheme_type_changed_to_a_weaker_kind_is_weakened() -> None:
    old = inventory(op("get", "/a"), schemes={"oauth": "oauth2"})
    new = inventory(op("get", "/a"), schemes={"oauth": "apiKey"})
    change = only(list(diff_inventories(old, new)))
    assert (change.kind, change.severity) == (ChangeKind.SECURITY_WEAKENED, Severity.HIGH)
    assert (change.before, change.after) == ("oauth2", "apiKey")
    assert diff_inventories(new, old) == ()


# ---------------------------------------------------------------------------- order, groups


def test_changes_come_worst_first() -> None:
    before = [op("get", "/a"), op("get", "/b")]
    after = [op("get", "/a", security=()), op("get", "/c")]
    severities = [c.severity for c in diff(before, after)]
    assert severities == sorted(severities, key=lambda s: s.rank, reverse=True)
    assert severities[0] is Severity.CRITICAL


def test_five_hundred_changes_fold_into_a_handful_of_groups() -> None:
    prefixes = [f"/area{i}" for i in range(20)]
    before = [op("get", f"{prefixes[i % 20]}/old{i}") for i in range(200)]
    before += [op("get", f"{prefixes[i % 20]}/kept{i}") for i in range(150)]
    after = [op("get", f"{prefixes[i % 20]}/new{i}") for i in range(150)]
    after += [op("get", f"{prefixes[i % 20]}/kept{i}", security=()) for i in range(150)]
    changes = diff(before, after)
    assert len(changes) == 500

    groups = group_changes(changes, max_per_group=3)

    assert len(groups) <= 12
    assert sum(g.count for g in groups) == 500
    assert {g.kind for g in groups} == {
        ChangeKind.SECURITY_REMOVED,
        ChangeKind.OPERATION_REMOVED,
        ChangeKind.OPERATION_ADDED,
    }
    assert groups[0].severity is Severity.CRITICAL
    assert all(len(g.examples) <= 3 and g.more == g.count - len(g.examples) for g in groups)
    rest = next(g for g in groups if g.path_prefix == OTHER_PATHS)
    assert "other paths" in rest.describe().splitlines()[0]
    assert rest.describe().endswith(f"and {rest.more} more")
    for kind in {g.kind for g in groups}:
        assert [g for g in groups if g.kind is kind][-1].path_prefix == OTHER_PATHS


def test_a_group_keeps_its_worst_severity_and_shows_the_worst_examples() -> None:
    removed = [op("get", f"/users/{i}", deprecated=i > 0) for i in range(4)]
    (group,) = group_changes(diff(removed, []), max_per_group=1, paths=["/users/0", "/orders"])
    assert (group.path_prefix, group.count, group.severity) == ("/users", 4, Severity.HIGH)
    assert group.examples[0].severity is Severity.HIGH
    assert group.describe().splitlines()[-1] == "  and 3 more"
    assert len(group.members) == 4
    assert group.headline() == "4 operation(s) removed under /users"


def test_groups_split_the_api_at_the_longest_common_prefix_not_the_first_segment() -> None:
    api = [f"/v1/{name}/{{id}}" for name in ("customers", "orders", "invoices")]
    before = [op("get", path) for path in api] + [op("post", "/v1/customers")]
    after = [op("get", path, security=()) for path in api] + [op("post", "/v1/customers")]

    groups = group_changes(diff(before, after), paths=[*api, "/v1/customers"])

    assert sorted(g.path_prefix for g in groups) == ["/v1/customers", "/v1/invoices", "/v1/orders"]
    assert groups[0].headline().endswith("lost their security requirement under /v1/customers")


def test_breaking_changes_roll_up_per_sub_kind_with_every_operation_kept() -> None:
    before = [op("get", f"/v1/items/{i}", parameters=(param("q"),)) for i in range(30)]
    retyped = (param("q", type="integer"),)
    after = [op("get", f"/v1/items/{i}", parameters=retyped) for i in range(30)]
    after[0] = op("get", "/v1/items/0", parameters=())

    groups = group_changes(diff(before, after), paths=["/v1/items/{id}", "/v1/users"])

    assert [(g.sub_kind, g.operations) for g in groups] == [
        ("parameter removed", 1),
        ("parameter type changed", 29),
    ]
    assert len(groups[1].members) == 29
    assert len(groups[1].examples) == 5
