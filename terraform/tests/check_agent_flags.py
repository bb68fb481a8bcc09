#!/usr/bin/env python3
"""Flag-drift check: every --flag the user-data templates pass to weir exists.

    check_agent_flags.py WEIR_BIN [TERRAFORM_DIR]

Finds each `weir <subcommand> ...` command line in the modules' templates
(modules/*/templates/*; backslash-continued lines are joined), then checks each
--flag used against `WEIR_BIN <subcommand> --help`. A subcommand whose --help
fails, a missing WEIR_BIN, or templates with no weir command at all are
failures: the check would otherwise pass without checking anything.

Prints one line per flag, then "N passed, N failed"; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# A weir command: at the start of a line, or after "=" (ExecStart=) or "/" (a path).
WEIR_COMMAND = re.compile(r"(?:^\s*|[=/])weir\s+([a-z][a-z0-9-]*)\b(.*)$")
FLAG = re.compile(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)")
HELP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Use:
    subcommand: str
    flag: str
    location: str  # "file:line"


def logical_lines(text: str) -> list[tuple[str, list[tuple[int, int]]]]:
    """Lines with backslash continuations joined, each with (offset, line number)
    pairs telling where each physical line starts in the joined text."""
    joined: list[tuple[str, list[tuple[int, int]]]] = []
    current, starts = "", []
    for number, line in enumerate(text.splitlines(), start=1):
        starts.append((len(current), number))
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        joined.append((current + line, starts))
        current, starts = "", []
    if starts:
        joined.append((current, starts))
    return joined


def flag_uses(template: Path, display_name: str) -> list[Use]:
    uses = []
    for line, starts in logical_lines(template.read_text(encoding="utf-8")):
        if line.lstrip().startswith("#"):
            continue
        match = WEIR_COMMAND.search(line)
        if not match:
            continue
        subcommand = match.group(1)
        for flag in FLAG.finditer(line, match.start(2)):
            number = max(n for offset, n in starts if offset <= flag.start())
            uses.append(Use(subcommand, flag.group(1), f"{display_name}:{number}"))
    return uses


def find_templates(terraform_dir: Path) -> list[Path]:
    return sorted(p for p in terraform_dir.glob("modules/*/templates/*") if p.is_file())


def help_flags(weir_bin: str, subcommand: str) -> set[str] | None:
    """Flags listed by `weir <subcommand> --help`, or None if that command fails."""
    try:
        completed = subprocess.run(
            [weir_bin, subcommand, "--help"],
            capture_output=True,
            text=True,
            timeout=HELP_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    return set(FLAG.findall(completed.stdout + completed.stderr))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weir_bin", help="path of the weir binary, e.g. target/debug/weir")
    parser.add_argument("terraform_dir", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)

    passed = failed = 0
    if not (os.path.isfile(args.weir_bin) and os.access(args.weir_bin, os.X_OK)):
        print(f"FAIL  no executable weir binary at {args.weir_bin} (build it first, or set WEIR_BIN)")
        print("0 passed, 1 failed")
        return 1

    uses: list[Use] = []
    for template in find_templates(args.terraform_dir):
        uses.extend(flag_uses(template, str(template.relative_to(args.terraform_dir))))
    if not uses:
        print(f"FAIL  no `weir <subcommand> --flag` command found in {args.terraform_dir}/modules/*/templates/")
        print("0 passed, 1 failed")
        return 1

    by_subcommand: dict[str, list[Use]] = {}
    for use in uses:
        by_subcommand.setdefault(use.subcommand, []).append(use)

    for subcommand, sub_uses in sorted(by_subcommand.items()):
        known = help_flags(args.weir_bin, subcommand)
        if known is None:
            failed += len(sub_uses)
            print(f"FAIL  `{args.weir_bin} {subcommand} --help` failed: the templates run a subcommand weir does not have")
            continue
        for use in sub_uses:
            if use.flag in known:
                passed += 1
                print(f"PASS  weir {subcommand} {use.flag}  ({use.location})")
            else:
                failed += 1
                print(f"FAIL  weir {subcommand} {use.flag}  ({use.location}): not in `weir {subcommand} --help`")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
