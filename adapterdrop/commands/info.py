"""``adapterdrop env`` (the environment block every record carries) and ``adapterdrop variants``."""

from __future__ import annotations

import argparse
import json

from adapterdrop.commands import AddCommand
from adapterdrop.commands.options import positive_int


def cmd_env(args: argparse.Namespace) -> int:
    from adapterdrop.measure.env import collect_env
    from adapterdrop.plan import resolve_devices

    envs = [collect_env(device, args.threads) for device in resolve_devices(args.device or ["cpu"])]
    if args.json:
        for env in envs:
            print(json.dumps(env))
        return 0
    for env in envs:
        width = max(len(key) for key in env)
        print("\n".join(f"{key.ljust(width)}  {value}" for key, value in env.items()))
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    from adapterdrop.backends import list_variants

    for info in list_variants():
        scope = " (inference only)" if info.inference_only else ""
        print(f"{info.name}{scope}: {info.summary}")
        for option in info.options:
            default = "" if option.default is None else f" [default {option.default}]"
            choices = f" {{{', '.join(option.choices)}}}" if option.choices else ""
            print(f"    {option.name}={option.kind.__name__}{choices}{default}: {option.help}")
    return 0


def register(add: AddCommand) -> None:
    env = add("env", cmd_env, "print the environment block that every record carries")
    env.add_argument("--device", action="append", help="cpu, cuda, cuda:N or all (default cpu)")
    env.add_argument("--threads", type=positive_int, help="thread count to report (default: torch's)")
    env.add_argument("--json", action="store_true", help="print JSON")

    add("variants", cmd_variants, "list every variant with its options")
