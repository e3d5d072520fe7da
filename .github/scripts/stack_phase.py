"""Prints `phase=<name>` and `built=true|false` for a stack, for $GITHUB_OUTPUT.

A stack whose configured phase is still planned fails `pulumi preview`/`up` before anything is
created (stacks/settings.py); CI skips it with a notice instead of failing every run until
the phase is built. Config is assembled as the CLI does (tests/harness.py: project defaults,
then Pulumi.<stack>.yaml).

    .venv/bin/python .github/scripts/stack_phase.py dev >> "$GITHUB_OUTPUT"
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stacks.catalog import phase_named  # noqa: E402 (after the repository is on the path)
from tests.harness import PROJECT, stack_config  # noqa: E402


def main(stack: str) -> None:
    name = stack_config(stack)[f"{PROJECT}:phase"]
    phase = phase_named(name)
    built = phase is not None and phase.module is not None and stack in phase.stacks
    print(f"phase={name}")
    print(f"built={str(built).lower()}")


if __name__ == "__main__":
    main(sys.argv[1])
