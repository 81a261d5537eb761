"""``python -m podsec.runtime.supervisor <pod-dir>``: the detached owner of a pod started by ``apply``.

It runs in its own session with stdio on ``<pod-dir>/supervisor.log``, runs the pod loop, and exits
once the pod is finished (everything released, the record kept for ``get``/``logs``) or deleted
(SIGTERM from ``podsec delete``: graceful stop, then the directory is removed).
"""

from __future__ import annotations

import sys
import time
import traceback

from podsec.runtime import state
from podsec.runtime.state import PodPaths


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m podsec.runtime.supervisor POD_DIR", file=sys.stderr)
        return 2
    paths = PodPaths.from_dir(argv[1])
    record = state.load(paths)
    if record is None:
        print(f"{time.ctime()}: no pod record in {paths.dir}", file=sys.stderr)
        return 1
    from podsec.errors import PodsecError
    from podsec.runtime.lifecycle import PodRunner

    try:
        PodRunner(paths, record).run()
    except PodsecError as e:
        print(f"{time.ctime()}: {e.render()}", file=sys.stderr)
        _give_up(paths, record, e.message)
        return 1
    except Exception as e:
        traceback.print_exc()
        _give_up(paths, record, f"internal error: {type(e).__name__}: {e}")
        return 1
    return 0


def _give_up(paths: PodPaths, record: state.PodRecord, message: str) -> None:
    """A pod that could not even be opened: say why in its record (the runner, if it ran, released it)."""
    current = state.load(paths) or record
    current.message = current.message or message
    current.released = True
    if paths.dir.exists():
        state.save(paths, current)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
