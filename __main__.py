"""Entry point: read the stack's settings, build its phase, export the outputs."""

import pulumi

from stacks.settings import load_settings

settings = load_settings()
for name, value in settings.phase.builder(settings).outputs.items():
    pulumi.export(name, value)
