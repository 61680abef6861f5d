"""Exec a command with SIGINT restored to its default action.

A process started in the background by a shell inherits SIGINT as ignored; `dagster dev` then
maps SIGTERM onto that ignored handler and cannot be stopped. Resetting it before exec fixes both.
"""

import os
import shutil
import signal
import sys

signal.signal(signal.SIGINT, signal.SIG_DFL)
program = shutil.which(sys.argv[1]) or sys.argv[1]
os.execv(program, sys.argv[1:])
