"""Schema tolerance as pure functions: a table per mode, version choice, definition checks,
and hypothesis properties over arbitrary definitions and payloads."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from breakers.schema_tolerance import (
    COERCIVE,
    LENIENT,
    MODES,
    STRICT,
    TYPES,
    DefinitionError,
    Schema,
    SchemaViolation,
    apply,
    check_definition,
    choose,
    is_type,
    tolerate,
)

pytestmark = pytest.mark.smoke

FIELDS = {
    "amount": {"type": "integer", "required": True},
    "currency": {"type": "string", "default": "EUR"},
    "rate": {"type": "number"},
    "paid": {"type": "boolean"},
    "at": {"type": "timestamp"},
    "meta": {"type": "object", "nullable": True},
    "tags": {"type": "array", "default": []},
}


def schema(mode: str, fields=None, version: int = 1) -> Schema:
    return Schema.build(mode, check_definition(fields or FIELDS), version)


def d(payload: dict) -> dict:
    """The payload with the definition's defaults filled in (what lenient adds)."""
    return {**payload, "currency": payload.get("currency", "EUR"), "tags": payload.get("tags", [])}


SAME = "same"  # as the mode to its left answered
# (payload, strict, lenient, coercive): the handler's payload, or the field a violation names
CASES = [
    ({"amount": 1}, {"amount": 1}, d({"amount": 1}), SAME),
    ({"amount": 1, "extra": 2}, "extra", d({"amount": 1, "extra": 2}), SAME),
    ({"currency": "USD"}, "amount", "amount", "amount"),
    ({"amount": "42"}, "amount", "amount", d({"amount": 42})),
    ({"amount": 1.0}, "amount", "amount", d({"amount": 1})),
    ({"amount": 1.5}, "amount", "amount", "amount"),
    ({"amount": True}, "amount", "amount", "amount"),
    ({"amount": "4 2"}, "amount", "amount", "amount"),
    ({"amount": "007"}, "amount", "amount", "amount"),
    ({"amount": None}, "amount", "amount", "amount"),
    ({"amount": 1, "rate": 2}, {"amount": 1, "rate": 2}, d({"amount": 1, "rate": 2}), SAME),
    ({"amount": 1, "rate": "3.5"}, "rate", "rate", d({"amount": 1, "rate": 3.5})),
    ({"amount": 1, "rate": "1e999"}, "rate", "rate", "rate"),
    ({"amount": 1, "rate": False}, "rate", "rate", "rate"),
    ({"amount": 1, "currency": 42}, "currency", "currency", d({"amount": 1, "currency": "42"})),
    ({"amount": 1, "currency": True}, "currency", "currency", "currency"),
    ({"amount": 1, "paid": "true"}, "paid", "paid", d({"amount": 1, "paid": True})),
    ({"amount": 1, "paid": "false"}, "paid", "paid", d({"amount": 1, "paid": False})),
    ({"amount": 1, "paid": "yes"}, "paid", "paid", "paid"),
    ({"amount": 1, "paid": 1}, "paid", "paid", "paid"),
    (
        {"amount": 1, "at": "2026-11-28T12:00:00Z"},
        {"amount": 1, "at": "2026-11-28T12:00:00Z"},
        d({"amount": 1, "at": "2026-11-28T12:00:00Z"}),
        SAME,
    ),
    (
        {"amount": 1, "at": "2026-11-28T13:30:00+01:30"},
        {"amount": 1, "at": "2026-11-28T13:30:00+01:30"},
        d({"amount": 1, "at": "2026-11-28T13:30:00+01:30"}),
        d({"amount": 1, "at": "2026-11-28T12:00:00Z"}),
    ),
    ({"amount": 1, "at": "2026-11-28T12:00:00"}, "at", "at", "at"),
    ({"amount": 1, "at": "2026-11-28"}, "at", "at", "at"),
    ({"amount": 1, "at": 1764331200}, "at", "at", "at"),
    (
        {"amount": 1, "meta": None},
        {"amount": 1, "meta": None},
        d({"amount": 1, "meta": None}),
        SAME,
    ),
    ({"amount": 1, "meta": []}, "meta", "meta", "meta"),
    ({"amount": 1, "tags": {}}, "tags", "tags", "tags"),
    ([1, 2], "payload", "payload", "payload"),
]


@pytest.mark.parametrize("case", CASES, ids=[str(c[0])[:40] for c in CASES])
@pytest.mark.parametrize("mode", MODES)
def test_each_mode_accepts_refuses_and_changes_what_it_should(case, mode):
    payload, *answers = case
    index = MODES.index(mode)
    while answers[index] == SAME:
        index -= 1
    want = answers[index]
    if isinstance(want, str):
        with pytest.raises(SchemaViolation) as info:
            apply(schema(mode), payload)
        assert info.value.field == want
    else:
        out, _ = apply(schema(mode), payload)
        assert out == want


def test_strict_returns_the_payload_itself():
    payload = {"amount": 3}
    out, notes = apply(schema(STRICT), payload)
    assert out is payload and notes == []


def test_lenient_and_coercive_never_change_the_payload_they_were_given():
    payload = {"amount": "7"}
    out, notes = apply(schema(COERCIVE), payload)
    assert payload == {"amount": "7"} and out["amount"] == 7
    assert notes == [
        "amount: coerced '7' to 7",
        "currency: missing, defaulted to 'EUR'",
        "tags: missing, defaulted to []",
    ]
    first, _ = apply(schema(LENIENT), {"amount": 1})
    first["tags"].append("x")  # a default is a copy, not the schema's own list
    again, _ = apply(schema(LENIENT), {"amount": 1})
    assert again["tags"] == []


def test_violations_say_why():
    with pytest.raises(SchemaViolation, match="amount: must be integer, got string"):
        apply(schema(LENIENT), {"amount": "x"})
    with pytest.raises(SchemaViolation, match="no unambiguous coercion"):
        apply(schema(COERCIVE), {"amount": "x"})
    with pytest.raises(SchemaViolation, match="extra: unknown field 'extra'"):
        apply(schema(STRICT), {"amount": 1, "extra": 1})


def versions(*pairs) -> list[Schema]:
    return [schema(mode, {"n": {"type": "integer"}}, v) for v, mode in pairs]


def test_a_registered_version_is_held_to_its_own_schema():
    registered = versions((1, STRICT), (2, LENIENT))
    assert choose(registered, 1) == (registered[0], None)
    assert choose(registered, 2) == (registered[1], None)


def test_strict_refuses_an_unregistered_version():
    with pytest.raises(SchemaViolation) as info:
        choose(versions((1, STRICT), (2, STRICT)), 3)
    assert info.value.field == "schema_version" and "not registered" in info.value.why


def test_a_newer_version_is_held_to_the_newest_and_an_older_to_the_nearest_older():
    registered = versions((1, LENIENT), (3, COERCIVE), (5, LENIENT))
    held, note = choose(registered, 9)
    assert held.version == 5 and "newest" in note
    held, note = choose(registered, 4)
    assert held.version == 3 and "nearest older" in note


def test_a_version_older_than_any_registered_is_refused():
    with pytest.raises(SchemaViolation, match="older than any registered"):
        choose(versions((2, LENIENT)), 1)


def test_tolerate_notes_the_version_it_held_the_event_to():
    out, notes = tolerate(versions((1, COERCIVE)), 2, {"n": "5"})
    assert out == {"n": 5}
    assert notes == [
        "schema_version: 2 held to version 1 (newest registered)",
        "n: coerced '5' to 5",
    ]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ([], "fields"),
        ({"a": "string"}, "fields.a"),
        ({"a": {"type": "text"}}, "fields.a.type"),
        ({"a": {}}, "fields.a.type"),
        ({"a": {"type": "string", "max": 3}}, "fields.a.max"),
        ({"a": {"type": "integer", "default": "1"}}, "fields.a.default"),
        ({"a": {"type": "integer", "default": True}}, "fields.a.default"),
        ({"a": {"type": "integer", "default": None}}, "fields.a.default"),
        ({"a": {"type": "timestamp", "default": "2026-01-01"}}, "fields.a.default"),
        ({"a": {"type": "string", "required": True, "default": "x"}}, "fields.a.default"),
        ({"a": {"type": "string", "required": "yes"}}, "fields.a.required"),
        ({"a": {"type": "string", "nullable": 1}}, "fields.a.nullable"),
        ({"": {"type": "string"}}, "fields"),
    ],
)
def test_a_bad_definition_names_the_field(fields, where):
    with pytest.raises(DefinitionError) as info:
        check_definition(fields)
    assert info.value.field == where


def test_a_good_definition_is_kept_as_given():
    assert check_definition(FIELDS) == FIELDS
    assert check_definition({"m": {"type": "object", "nullable": True, "default": None}})


# --- properties ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["42", "-7", "3.5", "1e3", "true", "false", "2026-11-28T12:00:00+05:00", "1e999", "007"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def definitions(draw):
    names = draw(st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=6))
    fields = {}
    for name in names:
        kind = draw(st.sampled_from(TYPES))
        spec = {"type": kind}
        if draw(st.booleans()):
            spec["nullable"] = True
        if draw(st.booleans()):
            spec["required"] = True
        else:
            default = draw(json_values)
            if (default is None and spec.get("nullable")) or is_type(kind, default):
                spec["default"] = default
        fields[name] = spec
    return check_definition(fields)


payloads = st.dictionaries(st.sampled_from("abcdefghij"), json_values, max_size=8) | json_values
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(definitions(), payloads)
def test_strict_never_changes_a_payload_it_accepts(fields, payload):
    try:
        out, notes = apply(Schema.build(STRICT, fields), payload)
    except SchemaViolation:
        return
    assert out is payload and out == payload and notes == []


@SETTINGS
@given(definitions(), payloads)
def test_coercive_output_always_satisfies_strict_for_the_same_fields(fields, payload):
    try:
        out, _ = apply(Schema.build(COERCIVE, fields), payload)
    except SchemaViolation:
        return
    known = {k: v for k, v in out.items() if k in fields}  # coercive passes unknown fields
    strict_out, _ = apply(Schema.build(STRICT, fields), known)
    assert strict_out == known
    # and coercing again changes nothing more
    assert apply(Schema.build(COERCIVE, fields), out)[0] == out


@SETTINGS
@given(definitions(), payloads, st.sampled_from(MODES), st.integers(1, 6), st.integers(1, 8))
def test_nothing_raises_anything_but_a_schema_violation(fields, payload, mode, registered, version):
    schemas = [Schema.build(mode, fields, v) for v in range(1, registered + 1, 2)]
    try:
        tolerate(schemas, version, payload)
    except SchemaViolation as exc:
        assert exc.field and exc.why


@SETTINGS
@given(st.dictionaries(st.text(max_size=4), json_values, max_size=4) | json_values)
def test_checking_any_definition_raises_only_definition_errors(fields):
    try:
        check_definition(fields)
    except DefinitionError as exc:
        assert exc.field.startswith("fields")


def test_numbers_too_long_for_python_to_convert_are_refused_not_raised():
    fields = {"s": {"type": "string"}, "i": {"type": "integer"}, "n": {"type": "number"}}
    coercive = Schema.build(COERCIVE, check_definition(fields))
    with pytest.raises(SchemaViolation) as info:
        apply(coercive, {"s": 10**5000})
    assert info.value.field == "s" and "a very long number" in info.value.why
    for name in ("i", "n"):
        with pytest.raises(SchemaViolation) as info:
            apply(coercive, {name: "9" * 5000})
        assert info.value.field == name


def test_a_timestamp_with_no_utc_equivalent_is_refused():
    at = Schema.build(COERCIVE, check_definition({"at": {"type": "timestamp"}}))
    with pytest.raises(SchemaViolation):
        apply(at, {"at": "0001-01-01T00:00:00+01:00"})
