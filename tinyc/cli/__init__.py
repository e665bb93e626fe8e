"""The tinyc command line: parses arguments, calls one library function, prints. Nothing else.

The commands live in commands.py (convert, report, inspect, run, validate) and boards.py
(boards, build, flash); all their text in text.py, the one progress bar in progress.py.
Errors from bad input are one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from tinyc import __version__
from tinyc.cli import boards, commands, fit
from tinyc.errors import TinycError


_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())   # click >= 8.2


def _usage_line(exc: click.ClickException) -> str:
    """click's usage error (several lines: usage, hint, error) as one line naming the flag."""
    msg = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return f"tinyc: error: {msg}{where}"


class TinycGroup(click.Group):
    def main(self, args=None, prog_name=None, **extra):
        """Every way out is one line on stderr: usage errors too (click prints three)."""
        extra.pop("standalone_mode", None)
        try:
            rv = super().main(args, prog_name=prog_name or "tinyc", standalone_mode=False, **extra)
        except _NO_ARGS_IS_HELP as exc:   # bare `tinyc`: the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(_usage_line(exc), err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("tinyc: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:  # `tinyc inspect M | head`: the reader left, nothing to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TinycError as exc:
            click.echo(f"tinyc: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("tinyc: interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, BrokenPipeError):
            raise
        except Exception as exc:  # a bug: one line, the traceback only on request
            if os.environ.get("TINYC_DEBUG"):
                traceback.print_exc()
            click.echo(f"tinyc: internal error: {type(exc).__name__}: {exc} "
                       "(set TINYC_DEBUG=1 for the traceback and please report it)", err=True)
            sys.exit(70)


@click.group(cls=TinycGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinyc")
def main():
    """tinyc: trained Keras/TFLite models to bit-exact fixed-point C for microcontrollers,
    validated on the board over a serial link."""


for _cmd in (*commands.COMMANDS, *boards.COMMANDS, *fit.COMMANDS):
    main.add_command(_cmd)

if __name__ == "__main__":
    main()
