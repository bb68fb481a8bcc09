#!/usr/bin/env python3
"""Static checks of Weir's Terraform modules and examples.

No terraform binary or provider is needed: every .tf file is parsed with
python-hcl2 and the wiring between files is checked from the parsed blocks.

    check_modules.py [TERRAFORM_DIR]     (default: the directory above tests/)

A module is every directory under modules/ and examples/ holding .tf files.
Prints one line per check, then "N passed, N failed"; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import hcl2

MODULE_ROOTS = ("modules", "examples")
# Arguments of a module block that are not input variables of the module.
MODULE_META_ARGUMENTS = {"source", "version", "providers", "count", "for_each", "depends_on"}
VAR_REFERENCE = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")
# Bookkeeping keys python-hcl2 adds to every block.
HCL2_INTERNAL_KEYS = {"__comments__", "__is_block__", "__start_line__", "__end_line__"}
TEMPLATEFILE_CALL = re.compile(r'templatefile\(\s*"\$\{path\.module\}/([^"]+)"\s*,\s*')
# ${name...} not preceded by a second $ (which escapes it), and %{ if name / %{ for x in name.
TEMPLATE_INTERPOLATION = re.compile(r"(?<!\$)\$\{\s*([A-Za-z_][A-Za-z0-9_]*)")
TEMPLATE_DIRECTIVE = re.compile(
    r"%\{~?\s*(?:if|for\s+[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)?\s+in)\s+!?\s*([A-Za-z_][A-Za-z0-9_]*)"
)
AWS_PROVIDER_CONSTRAINT = re.compile(r"^~>\s*5\.\d+(\.\d+)?$")


@dataclass
class Result:
    module: str
    check: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Module:
    path: Path
    name: str  # relative to the terraform directory, e.g. "modules/agents"
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    parse_errors: list[str] = field(default_factory=list)

    def blocks(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (file name, block) for every top-level block of one kind."""
        for file_name, parsed in self.files.items():
            for block in parsed.get(kind, []):
                yield file_name, block

    def labelled(self, kind: str) -> dict[str, dict[str, Any]]:
        """Blocks with one label (variable, output, module), by label."""
        found: dict[str, dict[str, Any]] = {}
        for _, block in self.blocks(kind):
            for label, body in block.items():
                found[unquote(label)] = body
        return found


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of labels and string literals."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def strings_in(node: Any, skip_keys: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every string (expression text or literal) in a parsed HCL value, comments excluded."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in HCL2_INTERNAL_KEYS or key in skip_keys:
                continue
            yield key
            yield from strings_in(value, skip_keys)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item, skip_keys)


def discover(terraform_dir: Path) -> list[Module]:
    modules = []
    for root in MODULE_ROOTS:
        base = terraform_dir / root
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.iterdir() if p.is_dir()):
            if any(path.glob("*.tf")):
                modules.append(load(path, f"{root}/{path.name}"))
    return modules


def load(path: Path, name: str) -> Module:
    module = Module(path=path, name=name)
    for tf_file in sorted(path.glob("*.tf")):
        try:
            with tf_file.open(encoding="utf-8") as handle:
                module.files[tf_file.name] = hcl2.load(handle)
        except Exception as error:  # python-hcl2 raises lark errors of many kinds
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            module.parse_errors.append(f"{name}/{tf_file.name}: {first_line}")
    return module


# --- checks -------------------------------------------------------------------


def check_parse(module: Module) -> Result:
    result = Result(module.name, f"parse {len(module.files) + len(module.parse_errors)} .tf files")
    result.problems.extend(module.parse_errors)
    return result


def check_versions(module: Module) -> Result:
    result = Result(module.name, "versions.tf pins terraform >= 1.5 and hashicorp/aws ~> 5.x")
    parsed = module.files.get("versions.tf")
    if parsed is None:
        exists = (module.path / "versions.tf").is_file()
        result.problems.append("versions.tf does not parse" if exists else "versions.tf is missing")
        return result
    terraform_blocks = parsed.get("terraform", [])
    if not terraform_blocks:
        result.problems.append("versions.tf has no terraform block")
        return result
    block = terraform_blocks[0]
    required_version = unquote(block.get("required_version", ""))
    if not re.fullmatch(r">=\s*1\.([5-9]|\d{2,})(\.\d+)?", str(required_version)):
        result.problems.append(f"required_version is {required_version!r}, want \">= 1.5\" or later")
    providers = {}
    for entry in block.get("required_providers", []):
        providers.update({k: v for k, v in entry.items() if k not in HCL2_INTERNAL_KEYS})
    aws = providers.get("aws")
    if not isinstance(aws, dict):
        result.problems.append("required_providers has no aws entry")
        return result
    if unquote(aws.get("source")) != "hashicorp/aws":
        result.problems.append(f"aws source is {unquote(aws.get('source'))!r}, want \"hashicorp/aws\"")
    version = str(unquote(aws.get("version", "")))
    if not AWS_PROVIDER_CONSTRAINT.match(version):
        result.problems.append(f"aws version constraint is {version!r}, want \"~> 5.N\"")
    return result


def referenced_variables(module: Module, include_variable_blocks: bool) -> dict[str, set[str]]:
    """var.NAME references, with the files they occur in."""
    references: dict[str, set[str]] = {}
    for file_name, parsed in module.files.items():
        for kind, blocks in parsed.items():
            if kind == "variable" and not include_variable_blocks:
                continue
            for text in strings_in(blocks):
                for name in VAR_REFERENCE.findall(text):
                    references.setdefault(name, set()).add(file_name)
    return references


def check_variables_declared(module: Module) -> Result:
    result = Result(module.name, "every var.X referenced is declared")
    declared = module.labelled("variable")
    for name, files in sorted(referenced_variables(module, include_variable_blocks=True).items()):
        if name not in declared:
            result.problems.append(f"var.{name} is referenced in {', '.join(sorted(files))} but not declared")
    return result


def check_variables_used(module: Module) -> Result:
    result = Result(module.name, "every declared variable is used")
    used = referenced_variables(module, include_variable_blocks=False)
    for name in sorted(module.labelled("variable")):
        if name not in used:
            result.problems.append(f"variable {name!r} is declared but never used")
    return result


def check_variable_metadata(module: Module) -> Result:
    result = Result(module.name, "every variable has a type and a description")
    for name, body in sorted(module.labelled("variable").items()):
        if "type" not in body:
            result.problems.append(f"variable {name!r} has no type")
        if not str(unquote(body.get("description", ""))).strip():
            result.problems.append(f"variable {name!r} has no description")
    return result


def check_output_metadata(module: Module) -> Result:
    result = Result(module.name, "every output has a description")
    for name, body in sorted(module.labelled("output").items()):
        if not str(unquote(body.get("description", ""))).strip():
            result.problems.append(f"output {name!r} has no description")
    return result


def check_module_calls(module: Module, terraform_dir: Path) -> Result:
    calls = module.labelled("module")
    result = Result(module.name, f"{len(calls)} module block(s) use existing modules and their inputs")
    for call_name, body in sorted(calls.items()):
        source = str(unquote(body.get("source", "")))
        if not source.startswith(("./", "../")):
            result.problems.append(f"module {call_name!r}: source {source!r} is not a local path, so it cannot be checked here")
            continue
        target_path = (module.path / source).resolve()
        if not target_path.is_dir() or not any(target_path.glob("*.tf")):
            result.problems.append(f"module {call_name!r}: source {source!r} is not a module directory")
            continue
        try:
            target_name = str(target_path.relative_to(terraform_dir.resolve()))
        except ValueError:
            target_name = str(target_path)
        target = load(target_path, target_name)
        if target.parse_errors:
            result.problems.append(f"module {call_name!r}: {target_name} does not parse")
            continue
        declared = target.labelled("variable")
        passed = {key for key in body if key not in HCL2_INTERNAL_KEYS and key not in MODULE_META_ARGUMENTS}
        for key in sorted(passed - declared.keys()):
            result.problems.append(f"module {call_name!r}: input {key!r} is not a variable of {target_name}")
        required = {name for name, var in declared.items() if "default" not in var}
        for key in sorted(required - passed):
            result.problems.append(f"module {call_name!r}: required input {key!r} of {target_name} is not passed")
    return result


def readme_table(text: str, heading: str) -> list[dict[str, str]] | None:
    """Rows of the first markdown table under '## <heading>', as header -> cell."""
    match = re.search(rf"^##\s+{re.escape(heading)}\s*$(.*?)(?=^##\s|\Z)", text, re.M | re.S)
    if not match:
        return None
    lines = [line.strip() for line in match.group(1).splitlines() if line.strip().startswith("|")]
    if len(lines) < 2:
        return []
    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip().strip("|").split("|")]
    header = [cell.lower() for cell in cells(lines[0])]
    rows = []
    for line in lines[2:]:  # lines[1] is the |---| separator
        rows.append(dict(zip(header, cells(line))))
    return rows


def hcl_text(value: Any) -> str:
    """HCL source text of a parsed value (a type constraint or a default)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return value
    if isinstance(value, list):
        return "[" + ", ".join(hcl_text(item) for item in value) + "]"
    if isinstance(value, dict):
        items = [f"{unquote(k)} = {hcl_text(v)}" for k, v in value.items() if k not in HCL2_INTERNAL_KEYS]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    return str(value)


def same_text(readme_cell: str, hcl: str) -> bool:
    """Equal up to whitespace and the backticks around a README cell."""
    return re.sub(r"\s+", "", readme_cell.strip().strip("`")) == re.sub(r"\s+", "", hcl)


def check_readme(module: Module) -> Result:
    result = Result(module.name, "README.md inputs/outputs tables match the variables/outputs")
    readme = module.path / "README.md"
    if not readme.is_file():
        result.problems.append("README.md is missing")
        return result
    text = readme.read_text(encoding="utf-8")
    variables = module.labelled("variable")
    outputs = module.labelled("output")
    for heading, declared in (("Inputs", variables), ("Outputs", outputs)):
        rows = readme_table(text, heading)
        if rows is None:
            result.problems.append(f"README.md has no '## {heading}' section")
            continue
        if not rows and declared:
            result.problems.append(f"README.md '## {heading}' has no table rows")
        listed: dict[str, dict[str, str]] = {}
        for row in rows:
            name = row.get("name", "").strip("`").strip()
            if name in listed:
                result.problems.append(f"README.md {heading}: {name!r} is listed twice")
            listed[name] = row
        for name in sorted(declared.keys() - listed.keys()):
            result.problems.append(f"README.md {heading}: {name!r} is declared but not listed")
        for name in sorted(listed.keys() - declared.keys()):
            result.problems.append(f"README.md {heading}: {name!r} is listed but not declared")
        if heading == "Inputs" and rows:
            missing_columns = [c for c in ("type", "default", "required") if c not in rows[0]]
            if missing_columns:
                result.problems.append(f"README.md Inputs table lacks column(s): {', '.join(missing_columns)}")
                continue
            for name in sorted(listed.keys() & declared.keys()):
                result.problems.extend(input_row_problems(name, declared[name], listed[name]))
    return result


def input_row_problems(name: str, variable: dict[str, Any], row: dict[str, str]) -> list[str]:
    problems = []
    required = "default" not in variable
    want_type = hcl_text(variable.get("type"))
    if not same_text(row["type"], want_type):
        problems.append(f"README.md Inputs: {name!r} Type says {row['type']}, the variable is `{want_type}`")
    want_default = "n/a" if required else hcl_text(variable["default"])
    if not same_text(row["default"], want_default):
        problems.append(f"README.md Inputs: {name!r} Default says {row['default']}, the variable has `{want_default}`")
    cell = row["required"].strip().lower()
    if cell not in ("yes", "no"):
        problems.append(f"README.md Inputs: {name!r} Required is {row['required']!r}, want yes or no")
    elif (cell == "yes") != required:
        problems.append(f"README.md Inputs: {name!r} Required says {cell}, but the variable {'has no' if required else 'has a'} default")
    return problems


def object_keys(text: str) -> tuple[list[str], str] | None:
    """Top-level keys of the HCL object literal that starts at text[0] == '{'."""
    if not text.startswith("{"):
        return None
    depth, keys, index, in_string = 0, [], 0, False
    start_of_item = True
    while index < len(text):
        char = text[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{([":
            depth += 1
            if depth == 1:
                start_of_item = True
        elif char in "})]":
            depth -= 1
            if depth == 0:
                return keys, text[: index + 1]
        elif depth == 1 and char in ",\n":
            start_of_item = True
        elif depth == 1 and start_of_item and not char.isspace():
            match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*[=:]", text[index:])
            if match:
                keys.append(match.group(1))
                index += match.end() - 1
            start_of_item = False
        index += 1
    return None


def template_variables(template: str) -> set[str]:
    return set(TEMPLATE_INTERPOLATION.findall(template)) | set(TEMPLATE_DIRECTIVE.findall(template))


def templatefile_calls(module: Module) -> list[tuple[str, list[str] | None]]:
    """(template path relative to the module, names of the variables passed) of
    every templatefile("${path.module}/...", {...}) call; None if the variables
    are not an object literal."""
    calls = []
    for _, parsed in module.files.items():
        for text in strings_in(parsed):
            for match in TEMPLATEFILE_CALL.finditer(text):
                parsed_keys = object_keys(text[match.end():])
                calls.append((match.group(1), parsed_keys[0] if parsed_keys else None))
    return calls


def check_templates(module: Module) -> Result:
    calls = templatefile_calls(module)
    result = Result(module.name, f"{len(calls)} templatefile() call(s) pass exactly the template's variables")
    for relative, keys in calls:
        template_path = module.path / relative
        if not template_path.is_file():
            result.problems.append(f"template {relative} does not exist")
            continue
        if keys is None:
            result.problems.append(f"templatefile({relative}): the variables are not an object literal")
            continue
        used = template_variables(template_path.read_text(encoding="utf-8"))
        for name in sorted(used - set(keys)):
            result.problems.append(f"template {relative} uses ${{{name}}} but templatefile() does not pass it")
        for name in sorted(set(keys) - used):
            result.problems.append(f"templatefile({relative}) passes {name!r}, which the template never uses")
    return result


# EC2 accepts only these characters in security group and rule descriptions.
SECURITY_GROUP_DESCRIPTION = re.compile(r"^[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}$")
SECURITY_GROUP_RESOURCES = {
    "aws_security_group",
    "aws_security_group_rule",
    "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule",
}


def check_security_group_descriptions(module: Module) -> Result:
    result = Result(module.name, "security group descriptions use only characters EC2 accepts")
    for file_name, block in module.blocks("resource"):
        for resource_type, instances in block.items():
            if unquote(resource_type) not in SECURITY_GROUP_RESOURCES:
                continue
            for name, body in instances.items():
                if name in HCL2_INTERNAL_KEYS:
                    continue
                description = body.get("description")
                if not isinstance(description, str) or "${" in description:
                    continue  # absent or computed: nothing to check here
                text = unquote(description)
                if not SECURITY_GROUP_DESCRIPTION.match(text):
                    result.problems.append(
                        f"{file_name}: {unquote(resource_type)}.{unquote(name)} description {text!r} has characters EC2 rejects"
                    )
    return result


def run_checks(terraform_dir: Path) -> list[Result]:
    modules = discover(terraform_dir)
    results: list[Result] = []
    if not modules:
        results.append(Result(str(terraform_dir), "modules found", [f"no module under {', '.join(MODULE_ROOTS)}/"]))
        return results
    for module in modules:
        results.append(check_parse(module))
        results.append(check_versions(module))
        results.append(check_variables_declared(module))
        results.append(check_variables_used(module))
        results.append(check_variable_metadata(module))
        results.append(check_output_metadata(module))
        results.append(check_module_calls(module, terraform_dir))
        results.append(check_templates(module))
        results.append(check_security_group_descriptions(module))
        results.append(check_readme(module))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("terraform_dir", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    results = run_checks(args.terraform_dir)
    for result in results:
        print(f"{'PASS' if result.ok else 'FAIL'}  {result.module}: {result.check}")
        for problem in result.problems:
            print(f"        {problem}")
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
