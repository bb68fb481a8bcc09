"""Tests of check_agent_flags.py against fixtures/fake-weir, a shell script that
prints clap-style help for `weir agent` and fails for every other subcommand.

    python3 -m unittest discover -s terraform/tests
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_agent_flags  # noqa: E402

FAKE_WEIR = str(Path(__file__).resolve().parent / "fixtures" / "fake-weir")

AGENT_TEMPLATE = """\
#!/bin/bash
# installs the weir agent: a comment naming weir agent --not-a-flag is ignored
aws secretsmanager get-secret-value --secret-id "$1" --query SecretString
cat > /etc/systemd/system/weir-agent.service <<'EOF'
[Service]
ExecStart=/usr/local/bin/weir agent \\
    --control-plane ${control_plane_url} \\
    --bucket ${bucket_url} \\
    --zone $${INSTANCE_ZONE} \\
    --listen 0.0.0.0:${kafka_port} \\
    --advertise $${INSTANCE_IP}:${kafka_port} \\
    --http-listen 0.0.0.0:${http_port}
EOF
"""

CONTROL_PLANE_TEMPLATE = """\
ExecStart=/usr/local/bin/weir control-plane \\
    --listen 0.0.0.0:${grpc_port} \\
    --metadata fdb:///etc/foundationdb/fdb.cluster
"""


class CheckAgentFlagsTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.root = Path(self._tmp.name)

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def template(self, module: str, text: str) -> None:
        path = self.root / "modules" / module / "templates" / "user-data.sh.tftpl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def run_check(self, weir_bin: str = FAKE_WEIR) -> tuple[int, list[str]]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = check_agent_flags.main([weir_bin, str(self.root)])
        return code, out.getvalue().splitlines()

    def test_flags_listed_in_help_pass(self) -> None:
        self.template("agents", AGENT_TEMPLATE)
        code, lines = self.run_check()
        self.assertEqual(code, 0, lines)
        self.assertEqual(lines[-1], "6 passed, 0 failed")
        self.assertIn("PASS  weir agent --zone  (modules/agents/templates/user-data.sh.tftpl:9)", lines)

    def test_flag_missing_from_help_fails(self) -> None:
        self.template("agents", AGENT_TEMPLATE.replace("--zone", "--availability-zone"))
        code, lines = self.run_check()
        self.assertEqual(code, 1)
        self.assertEqual(lines[-1], "5 passed, 1 failed")
        self.assertTrue(any(line.startswith("FAIL  weir agent --availability-zone") for line in lines), lines)

    def test_a_subcommand_weir_lacks_fails(self) -> None:
        self.template("agents", AGENT_TEMPLATE)
        self.template("control-plane", CONTROL_PLANE_TEMPLATE)
        code, lines = self.run_check()
        self.assertEqual(code, 1, lines)
        self.assertTrue(any("control-plane --help` failed" in line for line in lines), lines)
        self.assertEqual(lines[-1], "6 passed, 2 failed")

    def test_only_weir_command_lines_are_read(self) -> None:
        self.template("agents", AGENT_TEMPLATE)
        uses = check_agent_flags.flag_uses(
            self.root / "modules/agents/templates/user-data.sh.tftpl", "t"
        )
        self.assertEqual(
            [use.flag for use in uses],
            ["--control-plane", "--bucket", "--zone", "--listen", "--advertise", "--http-listen"],
        )
        self.assertEqual({use.subcommand for use in uses}, {"agent"})

    def test_missing_binary_fails(self) -> None:
        self.template("agents", AGENT_TEMPLATE)
        code, lines = self.run_check(str(self.root / "no-such-weir"))
        self.assertEqual(code, 1)
        self.assertEqual(lines[-1], "0 passed, 1 failed")

    def test_templates_without_weir_commands_fail(self) -> None:
        self.template("agents", "#!/bin/bash\necho hello --world\n")
        code, lines = self.run_check()
        self.assertEqual(code, 1)
        self.assertEqual(lines[-1], "0 passed, 1 failed")

    def test_repository_templates_use_weir(self) -> None:
        terraform_dir = Path(__file__).resolve().parent.parent
        uses = [
            use
            for template in check_agent_flags.find_templates(terraform_dir)
            for use in check_agent_flags.flag_uses(template, template.name)
        ]
        self.assertEqual({use.subcommand for use in uses}, {"agent", "control-plane"})


if __name__ == "__main__":
    unittest.main()
