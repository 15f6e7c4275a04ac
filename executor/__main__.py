"""helios-executor entry point (the control loop arrives with the executor issue)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Placeholder: the executor loop is not implemented yet."""
    print("helios-executor: not implemented yet (see issue 5)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
