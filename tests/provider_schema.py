"""The pinned AWS provider's schema, for the test provider that Terraform core plans main.tf with.

The AWS provider cannot be downloaded here, so its schema comes from an npm package generated
from the provider's own `terraform providers schema -json` output: the prebuilt AWS provider
bindings of CDK Terrain, the continuation of CDK for Terraform (pinned in provider-schema.json;
@cdktf/provider-aws has the same layout and works too). That package ships TypeScript
declarations and JavaScript, not the raw JSON, so `build_schema` turns them back into the
`providers schema -json` layout once per pinned version and caches it; tests/aws_provider_plugin.py
serves that layout to Terraform core (tests/terraform_core.py), so a real dump serves as well.

What the bindings say and how it is read:
- `export declare class X extends cdktn.TerraformResource` (or TerraformDataSource,
  TerraformProvider) with `static readonly tfResourceType = "aws_..."` names a type, and its
  constructor names the config interface;
- each config interface property is an argument: the doc link's `#snake_name` anchor gives
  its Terraform name, `?` makes it optional, a doc that starts `<name> block` makes it a
  nested block whose own interface the property's type names;
- computed-only attributes are the generated JavaScript's
  `// <name> - computed: true, optional: false, required: false` comments, in the class that
  stands for the resource or for a nested block (`<Interface>OutputReference`);
- an attribute's type is the accessor its JavaScript getter reads it with
  (`getStringAttribute`, `getNumberAttribute`, `getStringMapAttribute`, ...; a list wrapped in
  `Fn.tolist` is a set); the few the bindings type only as "any" are left without one.
Blocks that take at most one instance are nesting_mode "list" with max_items 1 whether the
provider declares them "list" or "single"; blocks the provider declares as sets are lists.
Core treats these alike for validating and planning.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from src.config import PROJECT_ROOT

PIN_FILE = Path(__file__).with_name("provider-schema.json")
CACHE_DIR = PROJECT_ROOT / ".cache" / "provider-schema"
# Bump when build_schema's output changes, so cached schemas are rebuilt.
BUILD_FORMAT = 7


class SchemaUnavailable(RuntimeError):
    """The pinned schema package could not be fetched, verified or read."""


################################################################################
# Fetching the pinned package
################################################################################


def load_pin(path: Path = PIN_FILE) -> dict:
    """The pinned package: name, exact version, npm integrity and the provider it describes."""
    pin = json.loads(path.read_text())
    missing = {"package", "version", "integrity", "provider", "provider_version"} - set(pin)
    if missing:
        raise SchemaUnavailable(f"{path} lacks {sorted(missing)}")
    return pin


def tarball_name(pin: dict) -> str:
    """The file name `npm pack` gives the pinned package: @scope/name@1.2.3 -> scope-name-1.2.3.tgz."""
    return f"{pin['package'].lstrip('@').replace('/', '-')}-{pin['version']}.tgz"


def integrity_of(path: Path, algorithm: str = "sha512") -> str:
    """The npm-style Subresource Integrity string (`sha512-<base64>`) of a file."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"{algorithm}-{base64.b64encode(digest.digest()).decode()}"


def verify_integrity(path: Path, expected: str) -> None:
    """Raise SchemaUnavailable unless the file's integrity equals the pinned one."""
    algorithm = expected.split("-", 1)[0]
    actual = integrity_of(path, algorithm)
    if actual != expected:
        raise SchemaUnavailable(f"{path.name}: integrity {actual} differs from the pinned {expected}")


def fetch_package(pin: dict, cache_dir: Path = CACHE_DIR, timeout: float = 600) -> Path:
    """The pinned package's tarball in cache_dir, downloaded with `npm pack` only when missing."""
    target = cache_dir / tarball_name(pin)
    if target.exists():
        verify_integrity(target, pin["integrity"])
        return target
    spec = f"{pin['package']}@{pin['version']}"
    if shutil.which("npm") is None:
        raise SchemaUnavailable(f"cannot fetch {spec}: npm is not installed (needs Node.js and npm)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        try:
            result = subprocess.run(
                ["npm", "pack", spec, "--pack-destination", scratch, "--ignore-scripts", "--silent"],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise SchemaUnavailable(f"cannot fetch {spec}: `npm pack` took over {timeout:.0f} s") from None
        packed = Path(scratch) / tarball_name(pin)
        if result.returncode != 0 or not packed.exists():
            raise SchemaUnavailable(
                f"cannot fetch {spec} with `npm pack` (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-800:]}"
            )
        verify_integrity(packed, pin["integrity"])
        os.replace(packed, target)
    return target


################################################################################
# Turning the generated bindings back into a `providers schema -json` document
################################################################################

DECLARATION = re.compile(
    r"^export (?:declare )?(?P<kind>interface|class) (?P<name>\w+)(?: extends (?P<base>[\w.]+))?[^{\n]*\{\n"
    r"(?P<body>.*?)^\}",
    re.M | re.S,
)
PROPERTY = re.compile(r"^    readonly (?P<name>\w+)(?P<optional>\?)?: ", re.M)
DOC_ANCHOR = re.compile(r"\{@link \S+#(\w+) [\w.]+#(\w+)\}")
RESOURCE_TYPE = re.compile(r'static readonly tfResourceType = "(\w+)";')
CONFIG_PARAM = re.compile(r"constructor\(scope: \w+, id: string, config\??: (\w+)\);")
JS_CLASS = re.compile(r"^class (\w+) extends [\w.]+ \{\n(.*?)^\}", re.M | re.S)
COMPUTED_ONLY = re.compile(
    r"// (\w+) - computed: true, optional: false, required: false\n\s*"
    r"(?:(?:this\.)?_\w+ = new ([\w.]+)\(|get )"
)
TYPE_NAME = re.compile(r"\b[A-Z]\w*\b")
GETTER = re.compile(r"get \w+\(\) \{\n\s*return (?P<body>[^\n]*?\.(?P<kind>\w+)\('(?P<name>\w+)'\)[^\n]*);\n")
# The JavaScript getter's accessor gives an attribute's type (a Fn.tolist around a list: a set).
ACCESSOR_TYPES = {
    "getStringAttribute": "string",
    "getNumberAttribute": "number",
    "getBooleanAttribute": "bool",
    "getStringMapAttribute": ["map", "string"],
    "getNumberMapAttribute": ["map", "number"],
    "getBooleanMapAttribute": ["map", "bool"],
    "getListAttribute": ["list", "string"],
    "getNumberListAttribute": ["list", "number"],
    "cdktn.StringMap": ["map", "string"],  # the class of a computed map attribute
    "cdktn.NumberMap": ["map", "number"],
    "cdktn.BooleanMap": ["map", "bool"],
}


@dataclass
class Prop:
    """One property of a generated config interface, in Terraform's terms."""

    name: str
    optional: bool
    is_block: bool
    type_text: str


@dataclass
class Bindings:
    """What one generated module of the bindings (one resource, data source or the provider) declares."""

    interfaces: dict = field(default_factory=dict)  # interface -> [Prop]
    classes: dict = field(default_factory=dict)  # class -> (base, tf type, config interface)
    computed: dict = field(default_factory=lambda: defaultdict(list))  # class -> [(name, nested class)]
    types: dict = field(default_factory=lambda: defaultdict(dict))  # class -> {name: type}


def camel_to_snake(name: str) -> str:
    """Fallback Terraform name for a property whose doc has no registry anchor."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def parse_properties(body: str) -> list[Prop]:
    """The properties of one interface body, each with the doc comment just above it."""
    props = []
    matches = list(PROPERTY.finditer(body))
    for index, match in enumerate(matches):
        doc_start = body.rfind("/**", 0, match.start())
        previous = matches[index - 1].end() if index else 0
        doc = body[doc_start : match.start()] if doc_start > previous else ""
        following = matches[index + 1].start() if index + 1 < len(matches) else len(body)
        type_end = body.find("\n    /**", match.end(), following)
        type_text = body[match.end() : type_end if type_end != -1 else following]
        anchor = DOC_ANCHOR.search(doc)
        name = anchor.group(2) if anchor else camel_to_snake(match["name"])
        lines = [line.strip(" *") for line in doc.splitlines()]
        first = next((line for line in lines if line and line != "/"), "")
        props.append(Prop(name, bool(match["optional"]), first == f"{name} block", type_text))
    return props


def parse_declarations(text: str, module: Bindings) -> None:
    """Record the interfaces and Terraform classes of one .d.ts file."""
    for match in DECLARATION.finditer(text):
        body = match["body"]
        if match["kind"] == "interface":
            module.interfaces[match["name"]] = parse_properties(body)
            continue
        kind = (match["base"] or "").rsplit(".", 1)[-1]
        tf_type, config = RESOURCE_TYPE.search(body), CONFIG_PARAM.search(body)
        if kind in ("TerraformResource", "TerraformDataSource", "TerraformProvider") and tf_type and config:
            module.classes[match["name"]] = (kind, tf_type.group(1), config.group(1))


def parse_javascript(text: str, module: Bindings) -> None:
    """Record the computed-only attributes each generated JavaScript class exposes, and the
    types its getters read attributes as."""
    for match in JS_CLASS.finditer(text):
        for attribute in COMPUTED_ONLY.finditer(match.group(2)):
            module.computed[match.group(1)].append((attribute.group(1), attribute.group(2)))
        for getter in GETTER.finditer(match.group(2)):
            kind = ACCESSOR_TYPES.get(getter["kind"])
            if kind is not None:
                if isinstance(kind, list) and kind[0] == "list" and "Fn.tolist(" in getter["body"]:
                    kind = ["set", kind[1]]
                module.types[match.group(1)][getter["name"]] = kind


def nested_interface(type_text: str, module: Bindings) -> str | None:
    """The generated interface a property's TypeScript type names, if any."""
    return next((name for name in TYPE_NAME.findall(type_text) if name in module.interfaces), None)


def struct_of_class(class_name: str | None) -> str | None:
    """The interface behind a generated List/Map/OutputReference class name."""
    if not class_name or "." in class_name:
        return None
    return re.sub(r"(OutputReference|List|Map)$", "", class_name)


TS_TYPES = {
    "string": "string",
    "number": "number",
    "boolean": "bool",
    "string[]": ["list", "string"],
    "number[]": ["list", "number"],
    "{ [key: string]: string; }": ["map", "string"],
}


def declared_type(type_text: str):
    """An argument's type from its TypeScript declaration, where no getter gives one (the
    provider's own arguments): plain strings, numbers, booleans and their lists and maps."""
    text = " ".join(type_text.split()).rstrip(";").strip()
    parts = [part.strip() for part in text.split("|") if part.strip() != "cdktn.IResolvable"]
    return TS_TYPES.get(parts[0]) if len(parts) == 1 else None


def nesting(type_text: str) -> str:
    """Terraform's nesting mode for a TypeScript property type."""
    if "[key: string]" in type_text:
        return "map"
    return "list" if "[]" in type_text else "single"


def build_block(interface: str, module: Bindings, computed_class: str | None, ancestors: tuple = ()) -> dict:
    """A `providers schema -json` block for one config interface and its computed-only attributes.

    A block whose interface is one of its own ancestors (the bindings merge a recursive schema's
    levels into one interface) is left open, i.e. unchecked.
    """
    if interface in ancestors:
        return {"open": True}
    ancestors = (*ancestors, interface)
    attributes, block_types = {}, {}
    for prop in module.interfaces.get(interface, []):
        inner = nested_interface(prop.type_text, module)
        mode = nesting(prop.type_text)
        if prop.is_block:
            block_types[prop.name] = {
                "nesting_mode": "list" if mode == "single" else mode,
                "min_items": 0 if prop.optional else 1,
                **({"max_items": 1} if mode == "single" and inner else {}),
                # A block the bindings type as `any` (a recursive one cut short) is left unchecked.
                "block": (
                    build_block(inner, module, inner + "OutputReference", ancestors) if inner else {"open": True}
                ),
            }
            continue
        attributes[prop.name] = {"optional": True} if prop.optional else {"required": True}
        kind = module.types.get(computed_class, {}).get(prop.name) or (None if inner else declared_type(prop.type_text))
        if kind is not None:
            attributes[prop.name]["type"] = kind
        if inner:
            attributes[prop.name]["nested_type"] = {
                **build_block(inner, module, inner + "OutputReference", ancestors),
                "nesting_mode": mode,
            }
    for name, nested_class in module.computed.get(computed_class, []):
        if name in attributes or name in block_types:
            continue
        attributes[name] = {"computed": True}
        kind = module.types.get(computed_class, {}).get(name) or ACCESSOR_TYPES.get(nested_class)
        if kind is not None:
            attributes[name]["type"] = kind
        inner = struct_of_class(nested_class)
        if inner in module.interfaces:
            attributes[name]["nested_type"] = {
                **build_block(inner, module, inner + "OutputReference", ancestors),
                "nesting_mode": "list",
            }
    return {"attributes": attributes, "block_types": block_types}


def read_modules(tarball: Path) -> dict[str, Bindings]:
    """Every generated module of the package tarball, by its folder under lib/."""
    modules: dict[str, Bindings] = defaultdict(Bindings)
    with tarfile.open(tarball, "r|gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 4 or parts[1] != "lib":
                continue
            if not member.name.endswith((".d.ts", ".js")):
                continue
            text = archive.extractfile(member).read().decode("utf-8")
            module = modules[parts[2]]
            if member.name.endswith(".d.ts"):
                parse_declarations(text, module)
            else:
                parse_javascript(text, module)
    return modules


def package_metadata(tarball: Path) -> dict:
    """The package.json of the tarball (it names the provider and version it was generated from)."""
    with tarfile.open(tarball, "r:gz") as archive:
        return json.load(archive.extractfile("package/package.json"))


def build_schema(tarball: Path, pin: dict) -> dict:
    """The provider schema, in `terraform providers schema -json` layout, from the bindings tarball."""
    metadata = package_metadata(tarball)
    generated = (metadata.get("cdktf") or metadata.get("cdktn") or {}).get("provider", {})
    if (generated.get("name"), generated.get("version")) != (pin["provider"], pin["provider_version"]):
        raise SchemaUnavailable(
            f"{pin['package']}@{pin['version']} was generated from {generated}, "
            f"not {pin['provider']} {pin['provider_version']} as pinned"
        )
    schema = {"provider": None, "resource_schemas": {}, "data_source_schemas": {}}
    for module in read_modules(tarball).values():
        for class_name, (kind, tf_type, config) in module.classes.items():
            block = {"version": 0, "block": build_block(config, module, class_name)}
            if kind == "TerraformProvider":
                schema["provider"] = block
            elif kind == "TerraformDataSource":
                schema["data_source_schemas"][tf_type] = block
            else:
                schema["resource_schemas"][tf_type] = block
    if not schema["provider"] or len(schema["resource_schemas"]) < 100:
        raise SchemaUnavailable(f"{tarball.name} does not hold the bindings this reader expects")
    return {
        "format_version": "1.0",
        "provider_schemas": {pin["provider"]: schema},
        "provider_versions": {pin["provider"]: pin["provider_version"]},
        "source": source_of(pin),
    }


def source_of(pin: dict) -> dict:
    """What a cached schema records of its origin; a cache whose record differs is rebuilt."""
    return {**{key: pin[key] for key in ("package", "version", "integrity")}, "build_format": BUILD_FORMAT}


################################################################################
# Loading
################################################################################


@dataclass
class ProviderSchema:
    """One provider's schema: its address, version and the blocks of its types."""

    address: str
    version: str
    provider: dict
    resources: dict
    data_sources: dict

    @property
    def local_name(self) -> str:
        """The provider's type name, which prefixes its resource types (aws for hashicorp/aws)."""
        return self.address.rsplit("/", 1)[-1]


def schema_from_document(document: dict, address: str, version: str) -> ProviderSchema:
    """One provider's schema out of a `providers schema -json` document."""
    try:
        entry = document["provider_schemas"][address]
    except KeyError:
        raise SchemaUnavailable(f"the schema document has no provider {address}") from None
    return ProviderSchema(
        address,
        version,
        entry["provider"]["block"],
        {name: value["block"] for name, value in entry.get("resource_schemas", {}).items()},
        {name: value["block"] for name, value in entry.get("data_source_schemas", {}).items()},
    )


def cached_schema_path(pin: dict, cache_dir: Path = CACHE_DIR) -> Path:
    """Where the schema built from the pinned package is kept, in `providers schema -json` layout."""
    return cache_dir / f"{pin['provider'].rsplit('/', 1)[-1]}-{pin['provider_version']}.schema.json"


def load_schema(pin_path: Path = PIN_FILE, cache_dir: Path = CACHE_DIR) -> ProviderSchema:
    """The pinned provider schema: from the cache, else fetched and built once and cached."""
    pin = load_pin(pin_path)
    cached = cached_schema_path(pin, cache_dir)
    document = None
    if cached.exists():
        try:
            document = json.loads(cached.read_text())
        except ValueError:
            document = None
        if document is not None and document.get("source") != source_of(pin):
            document = None
    if document is None:
        try:
            document = build_schema(fetch_package(pin, cache_dir), pin)
        except (OSError, tarfile.TarError, UnicodeDecodeError, ValueError) as error:
            raise SchemaUnavailable(f"cannot read {pin['package']}@{pin['version']}: {error}") from error
        write_atomically(cached, json.dumps(document, separators=(",", ":")))
    return schema_from_document(document, pin["provider"], pin["provider_version"])


def write_atomically(path: Path, text: str) -> None:
    """Write a file so that concurrent readers see the old content or the whole new one."""
    handle, scratch = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(scratch, 0o644)
    os.replace(scratch, path)


@functools.cache
def pinned_schema() -> ProviderSchema:
    """The pinned schema, loaded once per process: what tests call (SchemaUnavailable if it cannot be had)."""
    return load_schema()
