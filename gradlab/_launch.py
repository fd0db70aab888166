"""The ``gradlab`` command's entry point (``console_scripts`` and ``python -m gradlab``).

Importing the command line takes most of a second (numpy, scipy, pandas,
click); Ctrl-C in that time used to print a traceback. This module imports
nothing heavy (nor does the ``gradlab`` package, whose names load on first
use), so the import and the run of :func:`gradlab.cli.main` both happen
inside a handler that ends an interrupted start the way an interrupted
command ends: one line, exit code 130, nothing written.
"""
import sys

INTERRUPTED = 130   # 128 + SIGINT, as a shell reports it (and gradlab.cli.main for a running command)


def main(argv=None):
    """Import the CLI and run it; Ctrl-C at any point is one line and exit code 130."""
    try:
        from .cli import main as cli_main

        cli_main(argv)   # exits itself, with its own handling of Ctrl-C once it runs
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(INTERRUPTED)
