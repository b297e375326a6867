"""A stand-in for `terraform validate`: main.tf checked against the AWS provider's schema.

No Terraform binary or Terraform registry is reachable here, so the schema comes from an npm
package that is generated from the provider's own `terraform providers schema -json` output:
the prebuilt AWS provider bindings of CDK Terrain, the continuation of CDK for Terraform
(pinned in provider-schema.json; @cdktf/provider-aws has the same layout and works too).
That package ships TypeScript declarations and JavaScript, not the raw JSON, so
`build_schema` turns them back into the `providers schema -json` layout once per pinned
version and caches the result; `check_config` then reads only that layout, so a real
`terraform providers schema -json` file can be checked against just as well.

What the bindings say and how it is read:
- `export declare class X extends cdktn.TerraformResource` (or TerraformDataSource,
  TerraformProvider) with `static readonly tfResourceType = "aws_..."` names a type, and its
  constructor names the config interface;
- each config interface property is an argument: the doc link's `#snake_name` anchor gives
  its Terraform name, `?` makes it optional, a doc that starts `<name> block` makes it a
  nested block whose own interface the property's type names;
- computed-only attributes are the generated JavaScript's
  `// <name> - computed: true, optional: false, required: false` comments, in the class that
  stands for the resource or for a nested block (`<Interface>OutputReference`).
Read this way, @cdktf/provider-aws 21.22.1 gives back the schema of AWS provider 6.25.0 as a
`terraform providers schema -json` dump of that version has it (every type, argument, block,
required and computed-only flag and min_items) with one
difference: a block that takes at most one instance is nesting_mode "list" with max_items 1
whether the provider declares it "list" or "single"; for checking the two are alike.
"""

from __future__ import annotations

import base64
import difflib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import hcl2

from src.config import PROJECT_ROOT

PIN_FILE = Path(__file__).with_name("provider-schema.json")
CACHE_DIR = PROJECT_ROOT / ".cache" / "provider-schema"
# Bump when build_schema's output changes, so cached schemas are rebuilt.
BUILD_FORMAT = 4

RESOURCE_META = {"count", "for_each", "depends_on", "lifecycle", "provider", "provisioner", "connection"}
DATA_META = {"count", "for_each", "depends_on", "lifecycle", "provider"}
PROVIDER_META = {"alias", "version"}
RESOURCE_LIFECYCLE = {
    "create_before_destroy",
    "prevent_destroy",
    "ignore_changes",
    "replace_triggered_by",
    "precondition",
    "postcondition",
}
DATA_LIFECYCLE = {"precondition", "postcondition"}
DYNAMIC_KEYS = {"for_each", "iterator", "labels", "content"}


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
    """Record the computed-only attributes each generated JavaScript class exposes."""
    for match in JS_CLASS.finditer(text):
        for attribute in COMPUTED_ONLY.finditer(match.group(2)):
            module.computed[match.group(1)].append((attribute.group(1), attribute.group(2)))


def nested_interface(type_text: str, module: Bindings) -> str | None:
    """The generated interface a property's TypeScript type names, if any."""
    return next((name for name in TYPE_NAME.findall(type_text) if name in module.interfaces), None)


def struct_of_class(class_name: str | None) -> str | None:
    """The interface behind a generated List/Map/OutputReference class name."""
    if not class_name or "." in class_name:
        return None
    return re.sub(r"(OutputReference|List|Map)$", "", class_name)


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
        if inner:
            attributes[prop.name]["nested_type"] = {
                **build_block(inner, module, inner + "OutputReference", ancestors),
                "nesting_mode": mode,
            }
    for name, nested_class in module.computed.get(computed_class, []):
        if name in attributes or name in block_types:
            continue
        attributes[name] = {"computed": True}
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


def load_schema(pin_path: Path = PIN_FILE, cache_dir: Path = CACHE_DIR) -> ProviderSchema:
    """The pinned provider schema: from the cache, else fetched and built once and cached."""
    pin = load_pin(pin_path)
    cached = cache_dir / f"{pin['provider'].rsplit('/', 1)[-1]}-{pin['provider_version']}.schema.json"
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


################################################################################
# Version constraints
################################################################################

CONSTRAINT = re.compile(r"^\s*(=|!=|>=|<=|>|<|~>)?\s*v?(\d+(?:\.\d+){0,2})\s*$")


def version_tuple(text: str) -> tuple[int, int, int]:
    """1.2 -> (1, 2, 0): Terraform fills missing version segments with zero."""
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def version_admits(constraint: str, version: str) -> bool:
    """Whether a Terraform version constraint such as ">= 5.40, < 7.0" or "~> 6.2" admits version."""
    have = version_tuple(version)
    for part in constraint.split(","):
        match = CONSTRAINT.match(part)
        if not match:
            raise ValueError(f"not a version constraint: {part.strip()!r}")
        operator, text = match.group(1) or "=", match.group(2)
        want = version_tuple(text)
        if operator == "~>":
            # ~> 6.2 means >= 6.2, < 7.0; ~> 6.2.1 means >= 6.2.1, < 6.3.0; ~> 6 means >= 6, < 7.
            segments = [int(piece) for piece in text.split(".")]
            kept = segments[:-1] or segments
            upper = version_tuple(".".join(map(str, kept[:-1] + [kept[-1] + 1])))
            ok = want <= have < upper
        else:
            ok = {
                "=": have == want,
                "!=": have != want,
                ">": have > want,
                ">=": have >= want,
                "<": have < want,
                "<=": have <= want,
            }[operator]
        if not ok:
            return False
    return True


################################################################################
# Checking a configuration
################################################################################

HCL_OPTIONS = hcl2.SerializationOptions(with_comments=False, strip_string_quotes=True, explicit_blocks=True)
REFERENCE = re.compile(
    r"(?<![\w.])(?:(?P<data>data)\.)?(?P<type>[a-z][a-z0-9]*_\w+)\.(?P<name>[A-Za-z_][\w-]*)"
    r"(?P<rest>(?:\[[^\]]*\]|\.[A-Za-z_]\w*)*)"
)
STEP = re.compile(r"\[[^\]]*\]|\.([A-Za-z_]\w*)")


@dataclass
class Coverage:
    """How much of the configuration the check looked at."""

    resources: int = 0
    data_sources: int = 0
    providers: int = 0
    arguments: int = 0
    blocks: int = 0
    references: int = 0
    skipped: int = 0


@dataclass
class Report:
    """The problems found (empty when the configuration is valid) and the coverage."""

    problems: list[str]
    coverage: Coverage


def parse_terraform(text: str) -> dict:
    """A Terraform file parsed with python-hcl2, blocks marked with __is_block__."""
    return hcl2.loads(text, serialization_options=HCL_OPTIONS)


def is_block(value) -> bool:
    """Whether a parsed value is one or more blocks rather than an argument's value."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and item.get("__is_block__") for item in value)
    )


def suggestion(name: str, candidates) -> str:
    """A ' (did you mean "x"?)' hint for a misspelled name, or ''."""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


class Checker:
    """Walks one parsed configuration against one provider schema, collecting problems."""

    def __init__(self, schema: ProviderSchema):
        self.schema = schema
        self.problems: list[str] = []
        self.coverage = Coverage()
        self.label = f"{schema.address.split('/', 1)[-1]} {schema.version}"

    def problem(self, message: str) -> None:
        """Record one problem; messages name the block address and the argument."""
        self.problems.append(message)

    def check_body(self, block: dict, body: dict, where: str, kind: str, meta: set = frozenset()) -> None:
        """Check one block body: known arguments and blocks, required ones present, none computed-only."""
        if block.get("open"):
            return
        attributes, block_types = block.get("attributes", {}), block.get("block_types", {})
        counts: Counter = Counter()
        for key, value in body.items():
            if key == "__is_block__":
                continue
            if key in meta:
                self.check_meta(key, value, where, kind, block)
            elif key == "dynamic" and isinstance(value, list) and "dynamic" not in attributes:
                for entry in value:
                    for name, dynamic in entry.items():
                        if isinstance(dynamic, dict):
                            counts[name] += 1
                            self.check_dynamic(name, dynamic, block, where, kind)
            elif is_block(value):
                counts[key] += len(value)
                self.check_nested_blocks(key, value, block, where, kind)
            else:
                self.check_argument(key, value, block, where, kind)
        for name, attribute in attributes.items():
            if attribute.get("required") and name not in body:
                self.problem(f'{where}: missing required argument "{name}" ({kind} schema of {self.label})')
        for name, nested in block_types.items():
            if counts[name] < nested.get("min_items", 0):
                self.problem(
                    f'{where}: missing required block "{name}" '
                    f"(at least {nested['min_items']}; {kind} schema of {self.label})"
                )
            if "max_items" in nested and counts[name] > nested["max_items"]:
                self.problem(f'{where}: too many "{name}" blocks ({counts[name]}, at most {nested["max_items"]})')

    def check_argument(self, key: str, value, block: dict, where: str, kind: str) -> None:
        """Check one `key = value` argument."""
        attributes, block_types = block.get("attributes", {}), block.get("block_types", {})
        self.coverage.arguments += 1
        if key in block_types:
            self.problem(
                f'{where}: "{key}" is a block, not an argument: write {key} {{ ... }} ({kind} schema of {self.label})'
            )
            return
        attribute = attributes.get(key)
        if attribute is None:
            self.problem(
                f'{where}: unsupported argument "{key}"{suggestion(key, [*attributes, *block_types])}'
                f" ({kind} schema of {self.label})"
            )
        elif attribute.get("computed") and not (attribute.get("optional") or attribute.get("required")):
            self.problem(f'{where}: "{key}" is computed-only and cannot be set ({kind} schema of {self.label})')
        elif "nested_type" in attribute and attribute["nested_type"].get("nesting_mode") != "map":
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    self.check_body(attribute["nested_type"], item, f"{where}.{key}", kind)

    def check_nested_blocks(self, key: str, blocks: list, block: dict, where: str, kind: str) -> None:
        """Check literal nested blocks `key { ... }`."""
        attributes, block_types = block.get("attributes", {}), block.get("block_types", {})
        if key in block_types:
            nested = block_types[key]["block"]
        elif "nested_type" in attributes.get(key, {}):
            nested = attributes[key]["nested_type"]
        elif key in attributes:
            self.problem(
                f'{where}: "{key}" is an argument, not a block: write {key} = ... ({kind} schema of {self.label})'
            )
            return
        else:
            self.coverage.blocks += len(blocks)
            self.problem(
                f'{where}: unsupported block type "{key}"{suggestion(key, [*block_types, *attributes])}'
                f" ({kind} schema of {self.label})"
            )
            return
        for body in blocks:
            self.coverage.blocks += 1
            self.check_body(nested, body, f"{where}.{key}", kind)

    def check_dynamic(self, name: str, dynamic: dict, block: dict, where: str, kind: str) -> None:
        """Check a `dynamic "name" { for_each, content { ... } }` block as blocks of type name."""
        for key in dynamic:
            if key not in DYNAMIC_KEYS and key != "__is_block__":
                self.problem(f'{where}: dynamic "{name}" has an unsupported argument "{key}"')
        if "for_each" not in dynamic or not is_block(dynamic.get("content")):
            self.problem(f'{where}: dynamic "{name}" needs for_each and a content block')
            return
        self.check_nested_blocks(name, dynamic["content"], block, where, kind)

    def check_meta(self, key: str, value, where: str, kind: str, block: dict) -> None:
        """Check a meta-argument; lifecycle's own arguments and ignore_changes' names included."""
        if key != "lifecycle":
            self.coverage.arguments += 0 if is_block(value) else 1
            return
        allowed = DATA_LIFECYCLE if kind == "data source" else RESOURCE_LIFECYCLE
        for body in value if is_block(value) else []:
            self.coverage.blocks += 1
            for name in body:
                if name != "__is_block__" and name not in allowed:
                    self.problem(f'{where}: unsupported lifecycle argument "{name}"{suggestion(name, allowed)}')
            changes = body.get("ignore_changes", [])
            for entry in changes if isinstance(changes, list) else []:
                first = re.match(r"\$?\{?(\w+)", str(entry))
                known = {*block.get("attributes", {}), *block.get("block_types", {})}
                if first and first.group(1) not in known:
                    self.problem(
                        f'{where}: lifecycle ignore_changes names "{first.group(1)}", '
                        f"which is not an attribute{suggestion(first.group(1), known)}"
                    )

    def check_declaration(self, data: bool, tf_type: str, name: str, body: dict) -> None:
        """Check one `resource` or `data` block: its type exists and its body fits the type's schema."""
        label, address = ("data source", f"data.{tf_type}.{name}") if data else ("resource", f"{tf_type}.{name}")
        if data:
            self.coverage.data_sources += 1
        else:
            self.coverage.resources += 1
        table = self.schema.data_sources if data else self.schema.resources
        if tf_type not in table:
            self.problem(
                f'{address}: {label} type "{tf_type}" does not exist in {self.label}{suggestion(tf_type, table)}'
            )
        else:
            self.check_body(table[tf_type], body, address, label, DATA_META if data else RESOURCE_META)

    def check_reference(self, match: re.Match, declared: set) -> None:
        """Check one `type.name.attribute...` reference: declared, and its attributes in the schema."""
        data, tf_type, name = bool(match["data"]), match["type"], match["name"]
        if tf_type.split("_", 1)[0] != self.schema.local_name:
            return
        self.coverage.references += 1
        address = f"{'data.' if data else ''}{tf_type}.{name}"
        table = self.schema.data_sources if data else self.schema.resources
        if tf_type not in table:
            self.problem(
                f"reference {match.group(0)}: {'data source' if data else 'resource'} type "
                f'"{tf_type}" does not exist in {self.label}{suggestion(tf_type, table)}'
            )
            return
        if (data, tf_type, name) not in declared:
            self.problem(f"reference {match.group(0)}: {address} is not declared in this configuration")
        block: dict | None = table[tf_type]
        path = address
        for step in STEP.finditer(match["rest"]):
            if step.group(1) is None or block is None or block.get("open"):
                continue
            attribute = step.group(1)
            attributes, block_types = block.get("attributes", {}), block.get("block_types", {})
            if attribute in block_types:
                block = block_types[attribute]["block"]
            elif attribute in attributes:
                block = attributes[attribute].get("nested_type")
            else:
                self.problem(
                    f'reference {match.group(0)}: {path} has no attribute "{attribute}"'
                    f"{suggestion(attribute, [*attributes, *block_types])} ({self.label})"
                )
                return
            path = f"{path}.{attribute}"

    def check_references(self, document: dict, declared: set) -> None:
        """Check every reference to this provider's resources and data sources anywhere in the file.

        moved and removed blocks are left out: they name addresses that are meant to be gone.
        """
        kept = {key: value for key, value in document.items() if key not in ("moved", "removed")}
        for text in strings_in(kept):
            for expression in interpolations(text):
                for match in REFERENCE.finditer(expression):
                    self.check_reference(match, declared)

    def check_required_providers(self, document: dict) -> None:
        """The required_providers entry for this provider: right source, constraint admits the version."""
        entries = [
            entry
            for terraform in document.get("terraform", [])
            for providers in terraform.get("required_providers", [])
            for name, entry in providers.items()
            if name == self.schema.local_name
        ]
        if not entries:
            self.problem(f'terraform.required_providers has no "{self.schema.local_name}" entry')
            return
        for entry in entries:
            source = str(entry.get("source", ""))
            if source and not self.schema.address.endswith("/" + source.lower()):
                self.problem(
                    f"required_providers.{self.schema.local_name}: source {source!r} is not {self.schema.address}"
                )
            constraint = str(entry.get("version", ""))
            try:
                admitted = not constraint or version_admits(constraint, self.schema.version)
            except ValueError as error:
                self.problem(f"required_providers.{self.schema.local_name}: {error}")
                continue
            if not admitted:
                self.problem(
                    f"required_providers.{self.schema.local_name}: version constraint {constraint!r} "
                    f"does not admit the schema's provider version {self.schema.version}"
                )


def strings_in(value):
    """Every string anywhere in a parsed document (keys excluded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def interpolations(text: str):
    """The expressions inside `${ ... }` in a parsed string, braces balanced."""
    start = text.find("${")
    while start != -1:
        depth, index = 0, start + 1
        while index < len(text):
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            if depth == 0:
                break
            index += 1
        yield text[start + 2 : index]
        start = text.find("${", index)


def declared_addresses(document: dict) -> set:
    """(is data, type, name) of every resource and data source the document declares."""
    return {
        (kind == "data", tf_type, name)
        for kind in ("resource", "data")
        for entry in document.get(kind, [])
        for tf_type, named in entry.items()
        for name in named
        if name != "__is_block__"
    }


def check_config(document: dict, schema: ProviderSchema) -> Report:
    """Check a parsed configuration against one provider's schema; see the module docstring.

    Resources and data sources of other providers (types not prefixed with this provider's
    name, e.g. terraform_data or random_id) are counted as skipped, not checked.
    """
    checker = Checker(schema)
    checker.check_required_providers(document)
    for entry in document.get("provider", []):
        for name, body in entry.items():
            if name == schema.local_name:
                checker.coverage.providers += 1
                checker.check_body(schema.provider, body, f"provider.{name}", "provider", PROVIDER_META)
    for kind in ("resource", "data"):
        for entry in document.get(kind, []):
            for tf_type, named in entry.items():
                for name, body in named.items():
                    if name == "__is_block__":
                        continue
                    if tf_type.startswith(schema.local_name + "_"):
                        checker.check_declaration(kind == "data", tf_type, name, body)
                    else:
                        checker.coverage.skipped += 1
    checker.check_references(document, declared_addresses(document))
    return Report(checker.problems, checker.coverage)


def parse_files(paths) -> dict:
    """Several Terraform files of one module parsed into one document, as Terraform reads a directory."""
    merged: dict = defaultdict(list)
    for path in paths:
        for key, value in parse_terraform(Path(path).read_text()).items():
            merged[key].extend(value if isinstance(value, list) else [value])
    return dict(merged)


def check_files(paths, schema: ProviderSchema) -> Report:
    """Check the Terraform files of one module together against the provider schema."""
    return check_config(parse_files(paths), schema)


def check_file(path: Path, schema: ProviderSchema) -> Report:
    """Check one Terraform file against the provider schema."""
    return check_config(parse_terraform(Path(path).read_text()), schema)
