"""Sample traces shipped with slaballoc, so that ``replay`` works from a fresh install.

Each sample is the first 20,000 operations of one of the project's own
recordings of a real program (``../shared/traces/NAME.rep`` beside the main
checkout; how they were recorded is told in that folder's README), with the
header's counts rewritten for the slice, gzip-compressed (about 55 KB each).
A slice ends mid-run, so blocks the program would free later stay live.

On the command line a sample is named ``sample:NAME`` wherever a trace file
goes: ``slaballoc replay sample:perl``; ``slaballoc replay --list-samples``
lists them.
"""

from __future__ import annotations

from importlib.resources import files

from ..errors import SlabError
from .traces import Trace, decode_trace, read_trace

__all__ = ["PREFIX", "SAMPLES", "UnknownSampleError", "is_sample", "read_sample"]

#: How a trace argument names a sample.
PREFIX = "sample:"

#: Every sample, by name: the program it was recorded from.
SAMPLES = {
    "gcc-cc1": "GCC 12.2.0's cc1 compiling libpng's pngtest.c with -O2",
    "git-log": "git 2.39.5: log -p over zlib's whole history",
    "jq": "jq 1.6 grouping and sorting botocore's endpoints.json",
    "perl": "perl 5.36.0 running a regex report over Debian changelogs",
    "sqlite3": "SQLite 3.40.1 shell: inserts, indexes, joins and a VACUUM",
}


class UnknownSampleError(SlabError, LookupError):
    """A ``sample:NAME`` that names no sample."""


def is_sample(argument: str) -> bool:
    """True if a trace argument names a sample rather than a file.

    >>> is_sample("sample:perl"), is_sample("perl.rep")
    (True, False)
    """
    return argument.startswith(PREFIX)


def read_sample(name: str) -> Trace:
    """The sample called ``name`` (with or without the ``sample:`` prefix).  O(its size).

    >>> len(read_sample("sample:jq"))
    20000
    """
    name = name.removeprefix(PREFIX)
    if name not in SAMPLES:
        raise UnknownSampleError(
            f"there is no sample called {name!r}: choose from {', '.join(SAMPLES)}"
        )
    data = (files("slaballoc.tools") / "samples" / f"{name}.rep.gz").read_bytes()
    return decode_trace(data, f"{name}-sample.rep")


def read_trace_argument(argument: str) -> Trace:
    """The trace a command-line argument names: ``sample:NAME`` or a file's path.

    >>> read_trace_argument("sample:perl").name
    'perl-sample.rep'
    """
    return read_sample(argument) if is_sample(argument) else read_trace(argument)
