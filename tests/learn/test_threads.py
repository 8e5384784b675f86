"""limit_threads: the same limits as threadpoolctl's threadpool_limits, from a controller
built once (and again when modules were imported since)."""

import sys
import types

import numpy as np  # noqa: F401  its BLAS is loaded: there is a pool to limit
from threadpoolctl import threadpool_info

from workbench.learn import threads
from workbench.learn.threads import limit_threads


def blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_limits_blas_threads_inside_and_restores_them_after():
    before = blas_threads()
    assert before
    with limit_threads(1, user_api="blas"):
        assert blas_threads() == {1}
    assert blas_threads() == before


def test_the_controller_is_reused_until_a_module_is_imported():
    first = threads._controller()
    assert threads._controller() is first
    sys.modules["workbench_test_fresh_module"] = types.ModuleType("workbench_test_fresh_module")
    try:
        assert threads._controller() is not first  # a new module may bring a new thread pool
    finally:
        del sys.modules["workbench_test_fresh_module"]
