"""The command line's exit codes, in one place (the README's table says the same).

Why a module of its own: the sub-commands return them and ``motionctl.cli`` imports the sub-commands,
so they cannot live in ``motionctl/cli/__init__.py``.
"""

from __future__ import annotations

EXIT_OK = 0            #: done; the move is legal; the take ran to its end
EXIT_ILLEGAL = 1       #: a move that is not legal (its report says why; its outputs are still written)
EXIT_INPUT = 2         #: bad input: a file, a key, an argument (one readable line)
EXIT_INTERNAL = 3      #: a bug in motionctl (rerun with --debug for the traceback)
EXIT_FAULT = 4         #: the rig or its link faulted, or was E-stopped: the run did not reach its end
EXIT_INTERRUPTED = 130  #: stopped by Ctrl-C (a run: the controlled stop it asked for)
