"""The ``secushare`` command: configuration, dispatch and exit codes."""

from __future__ import annotations

import os
import sys

from secushare_cli.client import check_base_url
from secushare_cli.errors import INTERRUPTED, USAGE, CliError
from secushare_cli.parser import build_parser

__all__ = ["build_parser", "main"]


def dispatch(args, env_base: str | None) -> int:
    if args.command == "send":
        from secushare_cli import send
        from secushare_cli.login import token_api

        return send.run(args, token_api(env_base))
    if args.command == "fetch":
        from secushare_cli import fetch

        return fetch.run(args, env_base)
    if args.command == "keys":
        from secushare_cli import keycmd

        run = {"create": keycmd.run_create, "show": keycmd.run_show, "reset": keycmd.run_reset}
        return run[args.action](args, env_base)
    from secushare_cli import approvals
    from secushare_cli.login import token_api

    api = token_api(env_base)
    if args.action == "list":
        return approvals.run_list(args, api)
    return approvals.run_approve(args, api)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return USAGE
    env_base = os.environ.get("SECUSHARE_URL", "").strip() or None
    try:
        if env_base:
            env_base = check_base_url(env_base, "SECUSHARE_URL")
        return dispatch(args, env_base)
    except CliError as e:
        print(f"secushare: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("\nsecushare: interrupted", file=sys.stderr)
        return INTERRUPTED
