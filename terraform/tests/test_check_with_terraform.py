"""Tests of check_with_terraform.py: inputs that fail a variable's validation, and a
broken script or unit in a rendered template, are rejected. Skipped where no
terraform binary is installed.

    python3 -m unittest discover -s terraform/tests
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_with_terraform  # noqa: E402

MAIN_TF = """\
resource "aws_launch_template" "this" {
  user_data = base64encode(templatefile("${path.module}/templates/boot.sh.tftpl", {
    port = var.port
  }))
}
"""

VARIABLES_TF = """\
variable "port" {
  type        = number
  description = "Port."

  validation {
    condition     = var.port >= 1024
    error_message = "port must be at least 1024."
  }
}
"""

TEMPLATE = """\
#!/bin/bash
set -euo pipefail
cat > /etc/systemd/system/thing.service <<'UNIT'
[Unit]
Description=Thing

[Service]
ExecStart=/usr/local/bin/thing --port ${port}
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable thing.service
"""


@unittest.skipIf(shutil.which("terraform") is None, "no terraform binary")
class CheckWithTerraformTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.root = Path(self._tmp.name)
        module = self.root / "modules" / "thing"
        (module / "templates").mkdir(parents=True)
        (module / "main.tf").write_text(MAIN_TF, encoding="utf-8")
        (module / "variables.tf").write_text(VARIABLES_TF, encoding="utf-8")
        self.inputs = self.root / "tests" / "fixtures" / "inputs" / "thing.tfvars"
        self.inputs.parent.mkdir(parents=True)
        self.inputs.write_text("port = 9092\n", encoding="utf-8")
        self.template = module / "templates" / "boot.sh.tftpl"
        self.template.write_text(TEMPLATE, encoding="utf-8")

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def run_check(self) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = check_with_terraform.main([str(self.root)])
        return code, out.getvalue()

    def break_template(self, old: str, new: str) -> None:
        text = self.template.read_text(encoding="utf-8")
        self.assertIn(old, text)
        self.template.write_text(text.replace(old, new, 1), encoding="utf-8")

    def test_valid_template_passes(self) -> None:
        code, output = self.run_check()
        self.assertEqual(code, 0, output)
        self.assertIn("PASS  modules/thing/templates/boot.sh.tftpl [sample values]: bash -n", output)

    def test_inputs_failing_validation_fail(self) -> None:
        self.inputs.write_text("port = 80\n", encoding="utf-8")
        code, output = self.run_check()
        self.assertEqual(code, 1)
        self.assertIn("FAIL  modules/thing: variable validations accept the valid inputs", output)
        self.assertIn("port must be at least 1024.", output)

    def test_inputs_with_undeclared_variable_fail(self) -> None:
        self.inputs.write_text("port = 9092\nprot = 9093\n", encoding="utf-8")
        code, output = self.run_check()
        self.assertEqual(code, 1)
        self.assertIn("FAIL  modules/thing: variable validations accept the valid inputs", output)

    def test_missing_inputs_file_fails(self) -> None:
        self.inputs.unlink()
        code, output = self.run_check()
        self.assertEqual(code, 1)
        self.assertIn("no inputs file tests/fixtures/inputs/thing.tfvars", output)

    def test_shell_syntax_error_fails(self) -> None:
        self.break_template("systemctl enable thing.service", "if true; then systemctl enable thing.service")
        code, output = self.run_check()
        self.assertEqual(code, 1)
        self.assertIn("FAIL  modules/thing/templates/boot.sh.tftpl [sample values]: bash -n", output)

    def test_shellcheck_finding_fails(self) -> None:
        if shutil.which("shellcheck", path=str(Path(sys.executable).parent)) is None and shutil.which("shellcheck") is None:
            self.skipTest("no shellcheck")
        self.break_template("systemctl enable thing.service", "systemctl enable $1")
        code, output = self.run_check()
        self.assertEqual(code, 1)
        self.assertIn("FAIL  modules/thing/templates/boot.sh.tftpl [sample values]: shellcheck", output)

    @unittest.skipIf(shutil.which("systemd-analyze") is None, "no systemd-analyze")
    def test_unit_with_unknown_directive_fails(self) -> None:
        self.break_template("Restart=always", "Restart=always\nRestartt=5")
        code, output = self.run_check()
        self.assertEqual(code, 1)
        self.assertIn("FAIL  modules/thing/templates/boot.sh.tftpl [sample values]: systemd-analyze verify thing.service", output)
        self.assertIn("Unknown key", output)

    def test_script_without_unit_fails(self) -> None:
        self.template.write_text("#!/bin/bash\necho ${port}\n", encoding="utf-8")
        code, output = self.run_check()
        self.assertEqual(code, 1)
        self.assertIn("writes a systemd unit", output)


if __name__ == "__main__":
    unittest.main()
