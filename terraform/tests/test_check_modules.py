"""Tests of check_modules.py: a small valid tree passes, and each kind of breakage
is rejected by the check meant to catch it.

    python3 -m unittest discover -s terraform/tests
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_modules  # noqa: E402

VERSIONS_TF = """\
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }
}
"""

THING_FILES = {
    "versions.tf": VERSIONS_TF,
    "variables.tf": """\
variable "bucket_name" {
  type        = string
  description = "Bucket."
}

variable "retention_days" {
  type        = number
  description = "Days."
  default     = 7

  validation {
    condition     = var.retention_days > 0
    error_message = "Positive."
  }
}
""",
    "main.tf": """\
resource "aws_s3_bucket" "this" {
  bucket = var.bucket_name
  tags   = { days = var.retention_days }
}

resource "aws_launch_template" "this" {
  user_data = base64encode(templatefile("${path.module}/templates/boot.sh.tftpl", {
    bucket = aws_s3_bucket.this.id
    suffix = var.bucket_name == "" ? "" : "-x"
  }))
}
""",
    "outputs.tf": """\
output "arn" {
  description = "ARN."
  value       = aws_s3_bucket.this.arn
}
""",
    "templates/boot.sh.tftpl": """\
#!/bin/bash
echo ${bucket}
%{ if suffix != "" ~}
echo "$${HOME}" ${suffix}
%{ endif ~}
""",
    "README.md": """\
# thing

## Inputs

| Name | Type | Default | Required | Description |
|------|------|---------|:--------:|-------------|
| `bucket_name` | `string` | n/a | yes | Bucket. |
| `retention_days` | `number` | `7` | no | Days. |

## Outputs

| Name | Description |
|------|-------------|
| `arn` | ARN. |
""",
}

EXAMPLE_FILES = {
    "versions.tf": VERSIONS_TF,
    "variables.tf": """\
variable "name" {
  type        = string
  description = "Name."
}
""",
    "main.tf": """\
module "thing" {
  source = "../../modules/thing"

  bucket_name = var.name
}
""",
    "outputs.tf": """\
output "arn" {
  description = "ARN."
  value       = module.thing.arn
}
""",
    "README.md": """\
# example

## Inputs

| Name | Type | Default | Required | Description |
|------|------|---------|:--------:|-------------|
| `name` | `string` | n/a | yes | Name. |

## Outputs

| Name | Description |
|------|-------------|
| `arn` | ARN. |
""",
}


class CheckModulesTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.root = Path(self._tmp.name)
        self.write_tree("modules/thing", THING_FILES)
        self.write_tree("examples/basic", EXAMPLE_FILES)

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def write_tree(self, directory: str, files: dict[str, str]) -> None:
        for name, text in files.items():
            path = self.root / directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text(encoding="utf-8")
        self.assertIn(old, text, f"fixture edit: {old!r} not in {relative}")
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    def failures(self) -> dict[str, list[str]]:
        """'module: check' -> problems, for the failing checks only."""
        return {
            f"{r.module}: {r.check}": r.problems
            for r in check_modules.run_checks(self.root)
            if not r.ok
        }

    def assert_rejected(self, module: str, check_fragment: str, problem_fragment: str) -> None:
        failures = self.failures()
        matching = [
            problem
            for name, problems in failures.items()
            if name.startswith(module + ":") and check_fragment in name
            for problem in problems
        ]
        self.assertTrue(
            any(problem_fragment in p for p in matching),
            f"expected {module} / {check_fragment!r} to report {problem_fragment!r}; failures: {failures}",
        )

    # --- the fixture and the real tree pass -----------------------------------

    def test_valid_fixture_passes(self) -> None:
        self.assertEqual(self.failures(), {})

    def test_repository_modules_pass(self) -> None:
        terraform_dir = Path(__file__).resolve().parent.parent
        failures = {f"{r.module}: {r.check}": r.problems for r in check_modules.run_checks(terraform_dir) if not r.ok}
        self.assertEqual(failures, {})

    def test_main_prints_summary_and_exit_code(self) -> None:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(check_modules.main([str(self.root)]), 0)
        self.assertRegex(out.getvalue().splitlines()[-1], r"^\d+ passed, 0 failed$")

        self.edit("modules/thing/outputs.tf", '  description = "ARN."\n', "")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(check_modules.main([str(self.root)]), 1)
        self.assertRegex(out.getvalue().splitlines()[-1], r"^\d+ passed, 1 failed$")
        self.assertIn("FAIL  modules/thing: every output has a description", out.getvalue())

    def test_no_modules_is_a_failure(self) -> None:
        with tempfile.TemporaryDirectory() as empty:
            results = check_modules.run_checks(Path(empty))
        self.assertTrue(any(not r.ok for r in results))

    # --- each check rejects what it is for ------------------------------------

    def test_parse_error_names_the_file(self) -> None:
        self.edit("modules/thing/main.tf", "bucket = var.bucket_name", "bucket = = var.bucket_name {")
        self.assert_rejected("modules/thing", "parse", "modules/thing/main.tf")

    def test_undeclared_variable(self) -> None:
        self.edit("modules/thing/main.tf", "bucket = var.bucket_name", "bucket = var.bucket_nmae")
        self.assert_rejected("modules/thing", "referenced is declared", "var.bucket_nmae")

    def test_unused_variable(self) -> None:
        with (self.root / "modules/thing/variables.tf").open("a", encoding="utf-8") as handle:
            handle.write('\nvariable "spare" {\n  type        = string\n  description = "Never used."\n  default     = ""\n}\n')
        self.assert_rejected("modules/thing", "declared variable is used", "'spare' is declared but never used")

    def test_use_only_in_own_validation_is_not_use(self) -> None:
        # The validation block still references var.retention_days; that must not count.
        self.edit("modules/thing/main.tf", "tags   = { days = var.retention_days }", "tags   = {}")
        self.assert_rejected("modules/thing", "declared variable is used", "never used")

    def test_use_in_comment_is_not_use(self) -> None:
        self.edit("modules/thing/main.tf", "tags   = { days = var.retention_days }", "tags   = {} # var.retention_days")
        self.assert_rejected("modules/thing", "declared variable is used", "'retention_days'")

    def test_variable_without_type(self) -> None:
        self.edit("modules/thing/variables.tf", "  type        = string\n", "")
        self.assert_rejected("modules/thing", "type and a description", "'bucket_name' has no type")

    def test_variable_without_description(self) -> None:
        self.edit("modules/thing/variables.tf", '  description = "Days."\n', "")
        self.assert_rejected("modules/thing", "type and a description", "'retention_days' has no description")

    def test_output_without_description(self) -> None:
        self.edit("examples/basic/outputs.tf", '  description = "ARN."\n', "")
        self.assert_rejected("examples/basic", "output has a description", "'arn'")

    def test_missing_versions_tf(self) -> None:
        (self.root / "modules/thing/versions.tf").unlink()
        self.assert_rejected("modules/thing", "versions.tf", "versions.tf is missing")

    def test_unpinned_aws_provider(self) -> None:
        self.edit("modules/thing/versions.tf", '"~> 5.40"', '">= 4.0"')
        self.assert_rejected("modules/thing", "versions.tf", "aws version constraint")

    def test_old_terraform_constraint(self) -> None:
        self.edit("modules/thing/versions.tf", '">= 1.5.0"', '">= 1.3.0"')
        self.assert_rejected("modules/thing", "versions.tf", "required_version")

    def test_module_source_that_does_not_exist(self) -> None:
        self.edit("examples/basic/main.tf", "../../modules/thing", "../../modules/thingy")
        self.assert_rejected("examples/basic", "module block", "is not a module directory")

    def test_module_source_that_is_not_local(self) -> None:
        self.edit("examples/basic/main.tf", '"../../modules/thing"', '"git::https://example.com/thing.git"')
        self.assert_rejected("examples/basic", "module block", "not a local path")

    def test_module_input_the_module_does_not_declare(self) -> None:
        self.edit("examples/basic/main.tf", "  bucket_name = var.name\n", "  bucket_name = var.name\n  bucket_prefix = var.name\n")
        self.assert_rejected("examples/basic", "module block", "input 'bucket_prefix' is not a variable")

    def test_module_missing_required_input(self) -> None:
        self.edit("examples/basic/main.tf", "  bucket_name = var.name\n", "  retention_days = length(var.name)\n")
        self.assert_rejected("examples/basic", "module block", "required input 'bucket_name'")

    def test_template_variable_not_passed(self) -> None:
        self.edit("modules/thing/templates/boot.sh.tftpl", "echo ${bucket}", "echo ${bucket} ${region}")
        self.assert_rejected("modules/thing", "templatefile", "uses ${region}")

    def test_template_variable_passed_but_unused(self) -> None:
        self.edit("modules/thing/templates/boot.sh.tftpl", "echo ${bucket}\n", "echo\n")
        self.assert_rejected("modules/thing", "templatefile", "passes 'bucket'")

    def test_missing_template_file(self) -> None:
        (self.root / "modules/thing/templates/boot.sh.tftpl").unlink()
        self.assert_rejected("modules/thing", "templatefile", "does not exist")

    def test_security_group_description_with_apostrophe(self) -> None:
        with (self.root / "modules/thing/main.tf").open("a", encoding="utf-8") as handle:
            handle.write('\nresource "aws_security_group" "this" {\n  description = "the agents\' group"\n}\n')
        self.assert_rejected("modules/thing", "security group descriptions", "aws_security_group.this")

    def test_readme_missing(self) -> None:
        (self.root / "modules/thing/README.md").unlink()
        self.assert_rejected("modules/thing", "README", "README.md is missing")

    def test_readme_lacks_a_variable(self) -> None:
        self.edit("modules/thing/README.md", "| `retention_days` | `number` | `7` | no | Days. |\n", "")
        self.assert_rejected("modules/thing", "README", "'retention_days' is declared but not listed")

    def test_readme_lists_an_undeclared_variable(self) -> None:
        self.edit(
            "modules/thing/README.md",
            "| `retention_days` |",
            "| `region` | `string` | n/a | yes | Region. |\n| `retention_days` |",
        )
        self.assert_rejected("modules/thing", "README", "'region' is listed but not declared")

    def test_readme_lacks_an_output(self) -> None:
        self.edit("examples/basic/README.md", "| `arn` | ARN. |\n", "")
        self.assert_rejected("examples/basic", "README", "Outputs: 'arn' is declared but not listed")

    def test_readme_wrong_required(self) -> None:
        self.edit("modules/thing/README.md", "| `7` | no |", "| `7` | yes |")
        self.assert_rejected("modules/thing", "README", "'retention_days' Required says yes")

    def test_readme_wrong_default(self) -> None:
        self.edit("modules/thing/README.md", "| `7` |", "| `30` |")
        self.assert_rejected("modules/thing", "README", "'retention_days' Default says `30`")

    def test_readme_wrong_type(self) -> None:
        self.edit("modules/thing/README.md", "| `bucket_name` | `string` |", "| `bucket_name` | `list(string)` |")
        self.assert_rejected("modules/thing", "README", "'bucket_name' Type says `list(string)`")

    def test_readme_without_inputs_section(self) -> None:
        self.edit("modules/thing/README.md", "## Inputs", "## Parameters")
        self.assert_rejected("modules/thing", "README", "no '## Inputs' section")


class HclTextTest(unittest.TestCase):
    def test_renders_defaults_like_the_readme_tables(self) -> None:
        self.assertEqual(check_modules.hcl_text(None), "null")
        self.assertEqual(check_modules.hcl_text(True), "true")
        self.assertEqual(check_modules.hcl_text(4500), "4500")
        self.assertEqual(check_modules.hcl_text('"weir"'), '"weir"')
        self.assertEqual(check_modules.hcl_text(['"0.0.0.0/0"']), '["0.0.0.0/0"]')
        self.assertEqual(check_modules.hcl_text({"from": 4500, "to": 4599}), "{ from = 4500, to = 4599 }")
        self.assertEqual(check_modules.hcl_text("${map(string)}"), "map(string)")

    def test_object_keys_reads_only_the_top_level(self) -> None:
        keys, _ = check_modules.object_keys(textwrap.dedent('{a = "x{y}", b = f({c = 1}), d = [1, 2]}'))
        self.assertEqual(keys, ["a", "b", "d"])


if __name__ == "__main__":
    unittest.main()
