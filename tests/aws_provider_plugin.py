"""A test-only Terraform provider that serves the pinned AWS provider schema to Terraform core.

Terraform core validates and plans a configuration only with a provider that speaks its plugin
protocol (tfplugin6 over gRPC, started through go-plugin's handshake). The real AWS provider
cannot be downloaded here, so this process stands in for it with the schema tests/provider_schema.py
rebuilds from the pinned bindings; core then does every check it does for real: argument names,
required arguments, block counts, variable validation, the expressions and the graph.

What the stand-in answers, and where it differs from the real provider:
- attributes have the types the bindings give (tests/provider_schema.py); the few they give as
  "any" are `dynamic`, and sets of blocks are lists;
- every attribute that is not required is optional and computed, so a plan leaves each one the
  configuration does not set unknown, as a provider that fills in a default would;
- a plan is the proposed state with those attributes unknown; no resource is ever applied;
- a data source reads back its configuration, with the few computed values main.tf uses filled in
  by ``DATA_SOURCE_VALUES`` (known placeholders: core refuses a read with unknown values) and the
  rest null.
Run by Terraform as ``python -m tests.aws_provider_plugin`` (tests/terraform_core.py installs it).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import sys
import tempfile
import threading
from concurrent import futures
from pathlib import Path

import grpc
import msgpack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tf.gen import grpc_controller_pb2, grpc_controller_pb2_grpc, grpc_stdio_pb2_grpc
from tf.gen import tfplugin_pb2 as pb
from tf.gen import tfplugin_pb2_grpc as rpc

PROVIDER = "registry.terraform.io/hashicorp/aws"
MAGIC_COOKIE = ("TF_PLUGIN_MAGIC_COOKIE", "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2")
SCHEMA_ENV = "TEST_PROVIDER_SCHEMA"  # the `providers schema -json` file to serve
UNKNOWN = msgpack.ExtType(0, b"\x00")  # cty's msgpack encoding of an unknown value
ACCOUNT = "123456789012"

# Computed data source attributes main.tf reads, as the stand-in answers them from the data
# source's configuration and the provider's region; the others are null.
DATA_SOURCE_VALUES = {
    ("aws_caller_identity", "account_id"): lambda config, region: ACCOUNT,
    ("aws_partition", "partition"): lambda config, region: "aws",
    ("aws_partition", "dns_suffix"): lambda config, region: "amazonaws.com",
    ("aws_ecr_repository", "repository_url"): lambda config, region: (
        f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{config.get('name')}"
    ),
    ("aws_ecr_repository", "arn"): lambda config, region: (
        f"arn:aws:ecr:{region}:{ACCOUNT}:repository/{config.get('name')}"
    ),
    ("aws_ecr_image", "image_digest"): lambda config, region: (
        "sha256:" + hashlib.sha256(repr(sorted(config.items())).encode()).hexdigest()
    ),
    ("aws_iam_policy_document", "json"): lambda config, region: json.dumps({"Version": "2012-10-17", "Statement": []}),
}


# ---------------------------------------------------------------------------- values on the wire


def decode(value: pb.DynamicValue) -> object:
    """A DynamicValue's msgpack as Python values, unknowns kept as ``UNKNOWN``."""
    if not value.msgpack:
        return json.loads(value.json) if value.json else None
    return msgpack.unpackb(value.msgpack, raw=False, strict_map_key=False)


def encode(value: object) -> pb.DynamicValue:
    return pb.DynamicValue(msgpack=msgpack.packb(value, use_bin_type=True))


def fill_computed(value: object, block: dict, fill) -> object:
    """``value`` (an object of ``block``) with each null attribute that is not required given
    ``fill(name)``, nested blocks included; unknown values are left as they are."""
    if not isinstance(value, dict):
        return value
    filled = dict(value)
    for name, attribute in block.get("attributes", {}).items():
        if filled.get(name) is None and not attribute.get("required"):
            filled[name] = fill(name)
    for name, nested in block.get("block_types", {}).items():
        items = filled.get(name)
        if isinstance(items, list):
            filled[name] = [fill_computed(item, nested["block"], fill) for item in items]
    return filled


def read_only_set(config: object, block: dict, path: tuple = ()) -> list[pb.Diagnostic]:
    """An error for each computed-only attribute the configuration sets, as the provider's own
    validation refuses it (core leaves that check to the provider)."""
    if not isinstance(config, dict):
        return []
    found = []
    for name, attribute in block.get("attributes", {}).items():
        if _computed_only(attribute) and config.get(name) is not None:
            steps = [pb.AttributePath.Step(attribute_name=step) for step in (*path, name)]
            found.append(
                pb.Diagnostic(
                    severity=pb.Diagnostic.ERROR,
                    summary="Invalid Configuration for Read-Only Attribute",
                    detail=f'Cannot set a value for "{name}": the provider computes it.',
                    attribute=pb.AttributePath(steps=steps),
                )
            )
    for name, nested in block.get("block_types", {}).items():
        items = config.get(name)
        for item in items if isinstance(items, list) else []:
            found += read_only_set(item, nested["block"], (*path, name))
    return found


# ---------------------------------------------------------------------------- the schema


def schema_message(block: dict, version: int = 0) -> pb.Schema:
    return pb.Schema(version=version, block=_block(block))


def _block(block: dict) -> pb.Schema.Block:
    attributes = [_attribute(name, attribute) for name, attribute in sorted(block.get("attributes", {}).items())]
    nested = [
        pb.Schema.NestedBlock(
            type_name=name,
            block=_block(inner["block"]),
            nesting=pb.Schema.NestedBlock.NestingMode.Value(inner["nesting_mode"].upper()),
            min_items=inner.get("min_items", 0),
            max_items=inner.get("max_items", 0),
        )
        for name, inner in sorted(block.get("block_types", {}).items())
    ]
    return pb.Schema.Block(attributes=attributes, block_types=nested)


def _attribute(name: str, attribute: dict) -> pb.Schema.Attribute:
    """One attribute, of its type (`dynamic` where the bindings give none) or its nested object."""
    message = pb.Schema.Attribute(
        name=name,
        required=bool(attribute.get("required")),
        optional=not attribute.get("required") and not _computed_only(attribute),
        computed=not attribute.get("required"),
    )
    nested = attribute.get("nested_type")
    if nested is None:
        message.type = json.dumps(attribute.get("type", "dynamic")).encode()
    else:
        message.nested_type.CopyFrom(
            pb.Schema.Object(
                attributes=[_attribute(inner, value) for inner, value in sorted(nested.get("attributes", {}).items())],
                nesting=pb.Schema.Object.NestingMode.Value(nested["nesting_mode"].upper()),
            )
        )
    return message


def _computed_only(attribute: dict) -> bool:
    return bool(attribute.get("computed")) and not attribute.get("optional")


# ---------------------------------------------------------------------------- the provider


class Provider(rpc.ProviderServicer):
    """The tfplugin6 Provider service over the `providers schema -json` dump ``schema``."""

    def __init__(self, schema: dict, cache: Path | None = None):
        self.cache = cache  # where the serialized schema response is kept between runs
        self.schema = schema["provider_schemas"][PROVIDER]
        self.resources = self.schema["resource_schemas"]
        self.data_sources = self.schema["data_source_schemas"]
        self._response = None
        self.region = "us-east-1"

    def GetMetadata(self, request, context):
        return pb.GetMetadata.Response(
            resources=[pb.GetMetadata.ResourceMetadata(type_name=name) for name in self.resources],
            data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=name) for name in self.data_sources],
        )

    def GetProviderSchema(self, request, context):
        if self._response is None and self.cache is not None and self.cache.exists():
            self._response = pb.GetProviderSchema.Response.FromString(self.cache.read_bytes())
        if self._response is None:
            self._response = pb.GetProviderSchema.Response(
                provider=schema_message(self.schema["provider"]["block"]),
                resource_schemas={
                    name: schema_message(entry["block"], entry.get("version", 0))
                    for name, entry in self.resources.items()
                },
                data_source_schemas={
                    name: schema_message(entry["block"], entry.get("version", 0))
                    for name, entry in self.data_sources.items()
                },
                # Core then reads the schema once per command, not once per provider instance.
                server_capabilities=pb.ServerCapabilities(plan_destroy=True, get_provider_schema_optional=True),
            )
            if self.cache is not None:
                scratch = self.cache.with_suffix(f".{os.getpid()}.tmp")
                scratch.write_bytes(self._response.SerializeToString())
                os.replace(scratch, self.cache)
                for stale in self.cache.parent.glob(self.cache.name.split(".tfplugin6-")[0] + ".tfplugin6-*.bin"):
                    if stale != self.cache:
                        stale.unlink(missing_ok=True)
        return self._response

    def ValidateProviderConfig(self, request, context):
        return pb.ValidateProviderConfig.Response()

    def ValidateResourceConfig(self, request, context):
        block = self.resources[request.type_name]["block"]
        return pb.ValidateResourceConfig.Response(diagnostics=read_only_set(decode(request.config), block))

    def ValidateDataResourceConfig(self, request, context):
        block = self.data_sources[request.type_name]["block"]
        return pb.ValidateDataResourceConfig.Response(diagnostics=read_only_set(decode(request.config), block))

    def ConfigureProvider(self, request, context):
        self.region = (decode(request.config) or {}).get("region") or self.region
        return pb.ConfigureProvider.Response()

    def GetFunctions(self, request, context):
        return pb.GetFunctions.Response()

    def UpgradeResourceState(self, request, context):
        return pb.UpgradeResourceState.Response(upgraded_state=pb.DynamicValue(json=request.raw_state.json))

    def ReadResource(self, request, context):
        return pb.ReadResource.Response(new_state=request.current_state, private=request.private)

    def PlanResourceChange(self, request, context):
        proposed = decode(request.proposed_new_state)
        if proposed is None:  # a destroy
            return pb.PlanResourceChange.Response(planned_state=request.proposed_new_state)
        prior = decode(request.prior_state)
        block = self.resources[request.type_name]["block"]
        planned = fill_computed(proposed, block, lambda name: prior.get(name) if isinstance(prior, dict) else UNKNOWN)
        return pb.PlanResourceChange.Response(planned_state=encode(planned), planned_private=request.prior_private)

    def ReadDataSource(self, request, context):
        config = decode(request.config)
        block = self.data_sources[request.type_name]["block"]

        def value(name):
            answer = DATA_SOURCE_VALUES.get((request.type_name, name))
            return answer(config, self.region) if answer else None

        state = fill_computed(config, block, value)
        if "id" in block.get("attributes", {}) and state.get("id") is None:
            state["id"] = request.type_name
        return pb.ReadDataSource.Response(state=encode(state))

    def StopProvider(self, request, context):
        return pb.StopProvider.Response()


# ---------------------------------------------------------------------------- go-plugin's side


def _certificate() -> tuple[bytes, bytes, bytes]:
    """A self-signed certificate for localhost: (key PEM, certificate PEM, certificate DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return (
        key_pem,
        certificate.public_bytes(serialization.Encoding.PEM),
        certificate.public_bytes(serialization.Encoding.DER),
    )


class _Controller(grpc_controller_pb2_grpc.GRPCControllerServicer):
    def __init__(self, stopped: threading.Event):
        self.stopped = stopped

    def Shutdown(self, request, context):
        self.stopped.set()
        return grpc_controller_pb2.Empty()


def _stop_when_orphaned(stopped: threading.Event) -> None:
    """Stop when Terraform is gone without a Shutdown call (killed), as a provider would."""
    parent = os.getppid()

    def watch():
        while not stopped.wait(1):
            if os.getppid() != parent:
                stopped.set()

    threading.Thread(target=watch, daemon=True).start()


def serve(schema_file: Path) -> None:
    """Serve the provider as go-plugin expects: TLS on a unix socket, announced on stdout in
    the handshake line with the server's certificate (which the client then trusts)."""
    if os.environ.get(MAGIC_COOKIE[0]) != MAGIC_COOKIE[1]:
        sys.exit("this is a Terraform provider plugin: Terraform starts it")
    stopped = threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    text = schema_file.read_bytes()
    digest = hashlib.sha256(text + Path(__file__).read_bytes()).hexdigest()[:16]
    cache = schema_file.with_name(f"{schema_file.stem}.tfplugin6-{digest}.bin")
    rpc.add_ProviderServicer_to_server(Provider(json.loads(text), cache), server)
    grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(_Controller(stopped), server)
    grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(grpc_stdio_pb2_grpc.GRPCStdioServicer(), server)
    key_pem, cert_pem, cert_der = _certificate()
    credentials = grpc.ssl_server_credentials([(key_pem, cert_pem)])
    with tempfile.TemporaryDirectory(prefix="tfplugin-") as folder:
        socket = f"{folder}/provider.sock"
        server.add_secure_port(f"unix:{socket}", credentials)
        server.start()
        _stop_when_orphaned(stopped)
        certificate = base64.b64encode(cert_der).decode().rstrip("=")
        print(f"1|6|unix|{socket}|grpc|{certificate}", flush=True)
        stopped.wait()
        server.stop(grace=0.5)


if __name__ == "__main__":
    serve(Path(os.environ[SCHEMA_ENV]))
