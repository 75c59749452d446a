"""The subcommands of the ``adapterdrop`` console script, one module each.

A command module has ``register(add)``: ``add(name, func, help)`` makes its subparser (with ``func`` as
the command), and the module adds its arguments. ``func(args)`` returns the exit status. Heavy imports
(torch, the measurement) happen inside the command functions, so ``--help`` stays fast.
:data:`COMMANDS` is the order ``adapterdrop --help`` lists them in.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol

#: command modules under ``adapterdrop.commands``, in the order the help lists them
COMMANDS = ("sweep", "measure", "ddp", "profile", "info", "report", "regress")


class AddCommand(Protocol):
    def __call__(
        self, name: str, func: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser: ...
