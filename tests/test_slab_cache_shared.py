"""The tests every allocator must pass, run on SlabCache: same typed errors, nothing changed.

They are the seed allocators' own tests (``test_allocators.py``, ``test_misuse.py``),
imported here so that pytest collects them again with this module's ``make``.
Those left out assume the seed's defaults (4096 bytes, 64-byte slots, fast mode).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from slaballoc import SlabCache
from test_allocators import (
    test_bad_construction_is_refused,
    test_buffer_is_managed_in_place_without_copying,
    test_capacity_limits_a_buffer_to_its_start,
    test_close_releases_views_and_refuses_further_use,
    test_derived_views_survive_free_as_documented,
    test_free_many_is_all_or_nothing,
    test_invalid_frees_are_refused_and_change_nothing,
    test_mmap_buffer_and_close_lets_the_mmap_close,
    test_numpy_array_as_buffer,
    test_shared_memory_round_trip,
    test_slice_of_a_block_is_not_a_block,
    test_use_after_free_raises_in_safe_mode,
)
from test_misuse import (
    test_a_derived_memoryview_is_not_an_export_as_documented,
    test_bad_buffers_get_typed_errors,
    test_close_with_an_exported_view_stays_open,
    test_close_with_the_whole_memory_exported_changes_nothing,
    test_free_during_a_threads_readinto_waits_for_the_io,
    test_free_many_with_one_exported_view_frees_none,
    test_free_of_an_exported_view_is_refused_and_changes_nothing,
)

__all__ = [
    "test_a_derived_memoryview_is_not_an_export_as_documented",
    "test_bad_buffers_get_typed_errors",
    "test_bad_construction_is_refused",
    "test_buffer_is_managed_in_place_without_copying",
    "test_capacity_limits_a_buffer_to_its_start",
    "test_close_releases_views_and_refuses_further_use",
    "test_close_with_an_exported_view_stays_open",
    "test_close_with_the_whole_memory_exported_changes_nothing",
    "test_derived_views_survive_free_as_documented",
    "test_free_during_a_threads_readinto_waits_for_the_io",
    "test_free_many_is_all_or_nothing",
    "test_free_many_with_one_exported_view_frees_none",
    "test_free_of_an_exported_view_is_refused_and_changes_nothing",
    "test_invalid_frees_are_refused_and_change_nothing",
    "test_mmap_buffer_and_close_lets_the_mmap_close",
    "test_numpy_array_as_buffer",
    "test_shared_memory_round_trip",
    "test_slice_of_a_block_is_not_a_block",
    "test_use_after_free_raises_in_safe_mode",
]


@pytest.fixture
def make() -> Callable[..., Any]:
    """Overrides conftest's: these tests run on SlabCache alone here."""
    return SlabCache
