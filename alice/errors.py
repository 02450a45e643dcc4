"""User-facing errors: one clear line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class AliceError(Exception):
    """A problem with the user's input or setup, reported as one line."""


def run_main(main: Callable[[], None]) -> None:
    """Run a script's main(); turn AliceError (and a few obvious input errors) into one line.

    Set ALICE_DEBUG=1 to see full tracebacks.
    """
    if os.environ.get("ALICE_DEBUG"):
        main()
        return
    try:
        main()
    except AliceError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
