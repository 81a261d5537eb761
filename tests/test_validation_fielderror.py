"""FieldError rendering matches apimachinery's field.Error byte for byte."""

from __future__ import annotations

import datetime

import pytest

from podsec.api.fielderror import FieldError, Key, go_quote, render_path, render_value
from podsec.api.validation import ValidationOptions, validate_pod


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", '"abc"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("tab\tnew\nline", '"tab\\tnew\\nline"'),
        ("\x00\x1b\x7f", '"\\x00\\x1b\\x7f"'),
        ("caf\u00e9 \u65e5\u672c", '"caf\u00e9 \u65e5\u672c"'),
        ("nb\u00a0sp", '"nb\\u00a0sp"'),
        ("\u200b", '"\\u200b"'),
        ("\U000e0001", '"\\U000e0001"'),
        ("", '""'),
    ],
)
def test_go_quote(value: str, expected: str) -> None:
    assert go_quote(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-1, "-1"),
        (2147483648, "2147483648"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (1.5, "1.5"),
        (100.0, "100"),
        (1e21, "1e+21"),
        ("x", '"x"'),
        ([1, "a", None], '[1,"a",null]'),
        ({"b": 1, "a": [True]}, '{"a":[true],"b":1}'),
        ({"cmd": "a<b&c>"}, '{"cmd":"a\\u003cb\\u0026c\\u003e"}'),
        ({"when": datetime.date(2024, 1, 2)}, '{"when":"2024-01-02"}'),
    ],
)
def test_render_value(value: object, expected: str) -> None:
    assert render_value(value) == expected


def test_render_path() -> None:
    assert render_path(("spec", "containers", 1, "securityContext", "runAsGroup")) == (
        "spec.containers[1].securityContext.runAsGroup"
    )
    assert render_path(("metadata", "annotations", Key("a.b/c"))) == "metadata.annotations[a.b/c]"
    assert render_path(("metadata", "annotations", "a.b/c")) == "metadata.annotations.a.b/c"
    assert render_path(()) == ""


def test_key_compares_equal_to_its_string() -> None:
    assert ("metadata", "labels", Key("app")) == ("metadata", "labels", "app")
    assert repr(Key("app")) == "Key('app')"


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (FieldError("Required", ("spec", "containers")), "spec.containers: Required value"),
        (
            FieldError("Required", ("spec", "os", "name"), "cannot be empty"),
            "spec.os.name: Required value: cannot be empty",
        ),
        (FieldError("Forbidden", ("spec", "HostPID"), "x"), "spec.HostPID: Forbidden: x"),
        (
            FieldError("Duplicate", ("spec", "volumes", 1, "name"), value="v"),
            'spec.volumes[1].name: Duplicate value: "v"',
        ),
        (
            FieldError("NotFound", ("spec", "containers", 0, "volumeMounts", 0, "name"), value="x"),
            'spec.containers[0].volumeMounts[0].name: Not found: "x"',
        ),
        (
            FieldError("NotSupported", ("spec", "os"), value="mac", supported=("linux", "windows")),
            'spec.os: Unsupported value: "mac": supported values: "linux", "windows"',
        ),
        (FieldError("NotSupported", ("x",), value="y"), 'x: Unsupported value: "y"'),
        (
            FieldError("TooLong", ("a",), "may not be more than 4095 bytes", value="zzz"),
            "a: Too long: may not be more than 4095 bytes",
        ),
        (
            FieldError("InvalidType", ("spec", "hostPID"), "expected boolean, got string", "yes"),
            'spec.hostPID: Invalid value: "yes": expected boolean, got string',
        ),
        (FieldError("Invalid", ("spec",), "d", ""), 'spec: Invalid value: "": d'),
    ],
)
def test_error_bodies(err: FieldError, expected: str) -> None:
    assert err.render() == expected


def test_prefix_is_prepended() -> None:
    err = FieldError("Invalid", ("spec", "securityContext", "runAsUser"), "bad", -1)
    assert (
        err.render(("spec", "template"))
        == "spec.template.spec.securityContext.runAsUser: Invalid value: -1: bad"
    )
    assert err.render(["spec", "jobTemplate", "spec", "template"]) == (
        "spec.jobTemplate.spec.template.spec.securityContext.runAsUser: Invalid value: -1: bad"
    )
    assert err.field == "spec.securityContext.runAsUser"
    assert err.body() == "Invalid value: -1: bad"


def test_init_container_host_port_conflict_path_says_index_zero() -> None:
    """Upstream checks each init container as a one-element list, so its path is always [0]."""
    spec = {
        "containers": [{"name": "c", "image": "x"}],
        "initContainers": [
            {"name": "a", "image": "x"},
            {
                "name": "b",
                "image": "x",
                "ports": [{"containerPort": 1, "hostPort": 9}, {"containerPort": 2, "hostPort": 9}],
            },
        ],
    }
    assert [e.render() for e in validate_pod(None, spec)] == [
        'spec.initContainers[0].ports[1].hostPort: Duplicate value: "TCP//9"'
    ]


def test_cronjob_style_prefix() -> None:
    spec = {"containers": [{"name": "c", "image": "x", "securityContext": {"procMount": "Foo"}}]}
    (err,) = validate_pod(None, spec, ValidationOptions(resource_is_pod=False))
    assert err.render(("spec", "jobTemplate", "spec", "template")) == (
        "spec.jobTemplate.spec.template.spec.containers[0].securityContext.procMount: Unsupported value: "
        '"Foo": '
        'supported values: "Default", "Unmasked"'
    )
