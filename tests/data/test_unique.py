import numpy as np
import pytest

from workbench.data.unique import unique_ints


@pytest.mark.parametrize("values", [[], [5], [3, 3], [2, -1, 2, 7, -1, 0], list(range(10, 0, -1))])
def test_unique_ints_is_np_unique(values):
    a = np.array(values, dtype=np.int64)
    np.testing.assert_array_equal(unique_ints(a), np.unique(a))


def test_unique_ints_on_many_random_integers_and_2d_input():
    a = np.random.default_rng(0).integers(0, 5_000, (300, 40))
    got = unique_ints(a)
    np.testing.assert_array_equal(got, np.unique(a))
    assert got.dtype == a.dtype
