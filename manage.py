#!/usr/bin/env python
import gc
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line
    from django.db import connections

    execute_from_command_line(sys.argv)
    # The command is done. The collections the interpreter runs as it exits would each walk every
    # object it loaded (a quarter of a second of CPU a command), all of it about to go anyway:
    # freeze it, having closed the database connections those collections would have closed.
    connections.close_all()
    gc.freeze()


if __name__ == "__main__":
    main()
