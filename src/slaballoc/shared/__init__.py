"""One best-fit heap shared by independent processes, in a named ``/dev/shm`` segment.

One module per concern: :mod:`.segment` (the file and its mapping),
:mod:`.layout` (where each word lives), :mod:`.lock` (the crash-released
lock), :mod:`.journal` (the undo log), :mod:`.processes` (who is attached and
alive), :mod:`.engine` (best-fit placement over flat words) and :mod:`.heap`
(the public :class:`SharedHeap`).
"""

from .engine import SharedBlock
from .heap import DEFAULT_SHARED_ALIGNMENT, AttachedProcess, Reclaimed, SharedHeap
from .processes import ProcessName

__all__ = [
    "DEFAULT_SHARED_ALIGNMENT",
    "AttachedProcess",
    "ProcessName",
    "Reclaimed",
    "SharedBlock",
    "SharedHeap",
]
