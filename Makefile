# The lab's lifecycle (README, "Lifecycle"): thin targets over scripts/lab.py, which checks what each needs first.
#
#   make quickstart [STACK=local|dev] [PHASE=…]   prerequisites, stack, phase, pulumi up, then URLs and credentials
#   make status [STACK=…]                         stack, phase, outputs (no secrets), cost per hour now and stopped
#   make quickstop [STACK=…]                      pulumi destroy --exclude-protected: keeps the data, says its cost
#   make teardown STACK=… CONFIRM=<stack> [DELETE_LEFTOVERS=1]
#                                                 everything, data included; lists (or deletes) what outlives Pulumi
#   make dvc-remote [STACK=…] [DIR=<DVC repo>]    points a DVC repository at the stack's artifact store
#   make dvc-push [DIR=<DVC repo>]                dvc push there
#   make install, make test                       the README's two commands
#
# STACK defaults to the selected stack, else local; PHASE to the stack's configured phase, else its first.
# DIR defaults to the directory make runs in; a relative DIR is taken from there.

PYTHON := $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
LAB := $(PYTHON) scripts/lab.py $(if $(STACK),--stack '$(STACK)')

.PHONY: help install test quickstart status quickstop teardown dvc-remote dvc-push

help:
	@sed -n '3,13s/^# \{0,1\}//p' Makefile

install:
	bash scripts/install

test:
	.venv/bin/python -m pytest

quickstart:
	@$(LAB) quickstart $(if $(PHASE),--phase '$(PHASE)')

status:
	@$(LAB) status

quickstop:
	@$(LAB) quickstop

teardown:
	@$(LAB) teardown $(if $(CONFIRM),--confirm '$(CONFIRM)') \
		$(if $(filter 1 true yes,$(DELETE_LEFTOVERS)),--delete-leftovers)

dvc-remote:
	@$(LAB) dvc-remote $(if $(DIR),--dir '$(DIR)')

dvc-push:
	@$(LAB) dvc-push $(if $(DIR),--dir '$(DIR)')
