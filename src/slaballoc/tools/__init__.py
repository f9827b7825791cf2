"""Tooling around the allocators: the command line, demos, benchmarks, replay and pictures.

Nothing here is imported by ``import slaballoc``; the ``slaballoc`` command
imports these modules, and each imports the allocators it shows or measures.
"""
