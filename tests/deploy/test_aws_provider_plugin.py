"""The test provider's answers, in process: the schema it serves, a plan, a data source read and
the read-only check, on a small schema in `providers schema -json` layout (the real one is
served to Terraform core in test_terraform_core.py)."""

from __future__ import annotations

import json

import msgpack
import pytest

from tests.aws_provider_plugin import PROVIDER, UNKNOWN, Provider, decode, encode, pb

pytestmark = pytest.mark.unit

BLOCK = {
    "attributes": {
        "name": {"type": "string", "required": True},
        "memory": {"type": "number", "optional": True},
        "arn": {"type": "string", "computed": True},
        "tags": {"type": ["map", "string"], "optional": True},
        "settings": {"optional": True},
    },
    "block_types": {
        "logging": {
            "nesting_mode": "list",
            "max_items": 1,
            "block": {"attributes": {"format": {"type": "string", "required": True}, "group": {"optional": True}}},
        }
    },
}
SCHEMA = {
    "provider_schemas": {
        PROVIDER: {
            "provider": {"block": {"attributes": {"region": {"type": "string", "optional": True}}}},
            "resource_schemas": {"aws_thing": {"version": 2, "block": BLOCK}},
            "data_source_schemas": {
                "aws_ecr_repository": {
                    "block": {
                        "attributes": {
                            "name": {"type": "string", "required": True},
                            "repository_url": {"type": "string", "computed": True},
                            "id": {"type": "string", "optional": True},
                            "scan": {"type": "bool", "computed": True},
                        }
                    }
                }
            },
        }
    }
}


@pytest.fixture
def provider():
    return Provider(json.loads(json.dumps(SCHEMA)))


def test_the_schema_serves_types_flags_and_nested_blocks(provider):
    response = provider.GetProviderSchema(pb.GetProviderSchema.Request(), None)
    thing = response.resource_schemas["aws_thing"]
    assert thing.version == 2
    attributes = {attribute.name: attribute for attribute in thing.block.attributes}
    assert json.loads(attributes["memory"].type) == "number"
    assert json.loads(attributes["tags"].type) == ["map", "string"]
    assert json.loads(attributes["settings"].type) == "dynamic"  # the bindings give no type
    flags = {name: (a.required, a.optional, a.computed) for name, a in attributes.items()}
    assert flags["name"] == (True, False, False)
    assert flags["memory"] == (False, True, True)  # optional ones are computed too
    assert flags["arn"] == (False, False, True)
    (logging,) = thing.block.block_types
    assert (logging.type_name, logging.nesting, logging.max_items) == ("logging", pb.Schema.NestedBlock.LIST, 1)
    assert response.server_capabilities.get_provider_schema_optional


def test_the_schema_response_is_kept_and_read_back(tmp_path):
    cache = tmp_path / "schema.tfplugin6-abc.bin"
    (tmp_path / "schema.tfplugin6-old.bin").write_bytes(b"stale")
    first = Provider(json.loads(json.dumps(SCHEMA)), cache).GetProviderSchema(None, None)
    assert cache.read_bytes() == first.SerializeToString()
    assert not (tmp_path / "schema.tfplugin6-old.bin").exists()
    emptied = json.loads(json.dumps(SCHEMA))
    emptied["provider_schemas"][PROVIDER]["resource_schemas"] = {}
    again = Provider(emptied, cache).GetProviderSchema(None, None)
    assert again == first and "aws_thing" in again.resource_schemas  # read back, not rebuilt


def plan(provider, proposed, prior=None):
    request = pb.PlanResourceChange.Request(
        type_name="aws_thing", proposed_new_state=encode(proposed), prior_state=encode(prior), config=encode(proposed)
    )
    return decode(provider.PlanResourceChange(request, None).planned_state)


def test_a_create_leaves_what_the_configuration_does_not_set_unknown(provider):
    proposed = {
        "name": "a",
        "memory": 128,
        "arn": None,
        "tags": None,
        "settings": None,
        "logging": [{"format": "JSON", "group": None}],
    }
    planned = plan(provider, proposed)
    assert (planned["name"], planned["memory"]) == ("a", 128)
    assert planned["arn"] == planned["tags"] == planned["settings"] == UNKNOWN
    assert planned["logging"] == [{"format": "JSON", "group": UNKNOWN}]


def test_an_update_keeps_the_prior_computed_values(provider):
    prior = {"name": "a", "memory": 128, "arn": "arn:aws:thing:a", "tags": {}, "settings": None, "logging": []}
    planned = plan(provider, {**prior, "memory": 256, "arn": None}, prior)
    assert (planned["memory"], planned["arn"]) == (256, "arn:aws:thing:a")


def test_a_destroy_plans_null(provider):
    assert plan(provider, None, {"name": "a"}) is None


def test_a_data_source_reads_back_known_values_in_the_configured_region(provider):
    provider.ConfigureProvider(pb.ConfigureProvider.Request(config=encode({"region": "eu-west-1"})), None)
    request = pb.ReadDataSource.Request(
        type_name="aws_ecr_repository",
        config=encode({"name": "team/xgb", "repository_url": None, "id": None, "scan": None}),
    )
    state = decode(provider.ReadDataSource(request, None).state)
    assert state["repository_url"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/xgb"
    assert state["id"] == "aws_ecr_repository"
    assert state["scan"] is None  # not one main.tf reads: known, and null
    assert UNKNOWN not in state.values()


def test_setting_a_computed_only_attribute_is_refused_with_its_path(provider):
    config = {"name": "a", "arn": "arn:x", "logging": [{"format": "JSON", "group": None}]}
    request = pb.ValidateResourceConfig.Request(type_name="aws_thing", config=encode(config))
    (diagnostic,) = provider.ValidateResourceConfig(request, None).diagnostics
    assert diagnostic.severity == pb.Diagnostic.ERROR
    assert diagnostic.summary == "Invalid Configuration for Read-Only Attribute"
    assert [step.attribute_name for step in diagnostic.attribute.steps] == ["arn"]
    clean = pb.ValidateResourceConfig.Request(type_name="aws_thing", config=encode({**config, "arn": None}))
    assert list(provider.ValidateResourceConfig(clean, None).diagnostics) == []


def test_unknown_values_keep_ctys_encoding_on_the_way_back():
    """cty writes an unknown value as msgpack extension 0; it must survive a decode and encode."""
    wire = msgpack.packb({"arn": msgpack.ExtType(0, b"\x00"), "name": "a"}, use_bin_type=True)
    assert encode(decode(pb.DynamicValue(msgpack=wire))).msgpack == wire
