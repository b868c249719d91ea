"""The cluster spec's JSON Schema (docs/spec.schema.json) as an editor uses it, through a
JSON Schema implementation (jsonschema, pinned in scripts/test.sh): a valid draft 2020-12
schema, every example spec (examples/specs/*.toml) valid against it, and the usual mistakes
flagged. (bigmgr-core's tests check that the file is the one the spec's types generate, and
that the examples pass the whole check against the stacks.)"""

import copy
import json
import tomllib

import pytest
from jsonschema import Draft202012Validator

from conftest import REPO

SCHEMA = json.loads((REPO / "docs" / "spec.schema.json").read_text())
EXAMPLES = sorted((REPO / "examples" / "specs").glob("*.toml"))
VALIDATOR = Draft202012Validator(SCHEMA)


def errors(spec: dict) -> list[str]:
    """What the schema finds wrong with `spec`, one line each."""
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '-'}: {e.message}"
        for e in VALIDATOR.iter_errors(spec)
    ]


def test_the_schema_is_a_valid_draft_2020_12_schema():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_there_is_an_example_per_shipped_stack():
    stacks = sorted(p.name for p in (REPO / "stacks").iterdir() if p.is_dir())
    assert [p.stem for p in EXAMPLES] == stacks


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_spec_is_valid_against_the_schema(path):
    text = path.read_text()
    assert text.startswith("#:schema ../../docs/spec.schema.json\n"), "editors find the schema"
    assert errors(tomllib.loads(text)) == []


BASE = """
cluster = "prod"

[hosts]
h1 = "127.0.0.2"

[services.zk]
stack = "bigtop"
service = "zookeeper"
placement = { zookeeper_server = ["h1"], zookeeper_client = { count = 1, match = "h*" } }
configs = { "zoo.cfg" = { tickTime = 2000, "admin.enableServer" = false } }

[services.zk.host_overrides.h1."zookeeper-env"]
jvmFlags = { env = "ZK_JVM_FLAGS" }

[services.zk.policy]
batch_size = 2
healing = { restart = true, grace = "30s" }

[[relations]]
requirer = "spark:zookeeper"
provider = "zk"
"""


def test_a_spec_of_every_shape_is_valid():
    assert errors(tomllib.loads(BASE)) == []


def _set(spec: dict, path: tuple, value) -> None:
    *parents, last = path
    for key in parents:
        spec = spec[key]
    if value is DELETE:
        del spec[last]
    else:
        spec[last] = value


DELETE = object()
TICK_TIME = ("services", "zk", "configs", "zoo.cfg", "tickTime")

MISTAKES = {
    "an unknown key": (("clusters",), "prod"),
    "a misspelt service key": (("services", "zk", "placment"), {}),
    "a service without its stack": (("services", "zk", "stack"), DELETE),
    "a cluster name with a blank": (("cluster",), "my cluster"),
    "a host name with a slash": (("hosts", "h1/x"), "127.0.0.9"),
    "a placement by a word": (("services", "zk", "placement", "zookeeper_server"), "all"),
    "a negative count": (("services", "zk", "placement", "zookeeper_server"), -1),
    "an unknown key in a count rule": (
        ("services", "zk", "placement", "zookeeper_server"),
        {"count": 2, "amongst": ["h1"]},
    ),
    "a component name in capitals": (("services", "zk", "placement", "ZooKeeper"), ["h1"]),
    "a config value that is a table": (TICK_TIME, {"ms": 2000}),
    "a config value that is a list": (TICK_TIME, [2000]),
    "a secret reference to a bad variable name": (
        ("services", "zk", "host_overrides", "h1", "zookeeper-env", "jvmFlags"),
        {"env": "1FLAGS"},
    ),
    "a secret reference with two sources": (
        ("services", "zk", "host_overrides", "h1", "zookeeper-env", "jvmFlags"),
        {"env": "A", "file": "b"},
    ),
    "a healing policy without its switch": (("services", "zk", "policy", "healing"), {}),
    "an unknown policy": (("services", "zk", "policy", "scaling"), 3),
    "a relation without its provider": (("relations", 0, "provider"), DELETE),
}


@pytest.mark.parametrize("mistake", MISTAKES, ids=list(MISTAKES))
def test_the_usual_mistakes_are_flagged(mistake):
    path, value = MISTAKES[mistake]
    spec = copy.deepcopy(tomllib.loads(BASE))
    _set(spec, path, value)
    assert errors(spec), f"{mistake} passed the schema"
