"""Hostile inputs for the orderings behind diagnose's exact in-memory figures (``ordering.c``,
``_numpy/ordering.py``): buffers the kernel functions must refuse without keeping hold of them,
and diagnose's figures on inputs a sort or a grouping can get wrong, against the NumPy engine."""

from __future__ import annotations

import sys

import numpy as np
import pytest

_REFUSED_FIRST_ARGUMENT = {
    "sort_keys": lambda K, a: K.sort_keys(a, np.empty(1, dtype=np.int64)),
    "argsort": lambda K, a: K.argsort(a, np.empty(1, dtype=np.int64), False),
    "pool": lambda K, a: K.pool(a, np.ones(1), np.empty(1, dtype=np.int64), np.empty(1),
                                np.empty(1)),
    "worst": lambda K, a: K.worst(a, np.ones(1), np.ones(1), np.empty(4)),
    "key_groups": lambda K, a: K.key_groups(a, np.ones(1, dtype=bool), np.ones(1), np.ones(1),
                                            None, *[np.empty(1)] * 6),
    "probability_groups": lambda K, a: K.probability_groups(a, *[np.empty(1)] * 6),
}


@pytest.mark.parametrize("name", sorted(_REFUSED_FIRST_ARGUMENT))
def test_a_refused_first_buffer_is_released(K, name):
    # a buffer of the wrong item size is refused after it was taken: it must be given back, or
    # the object stays exported (a bytearray can no longer grow) and referenced forever
    call = _REFUSED_FIRST_ARGUMENT[name]
    data = bytearray(8)
    with pytest.raises(ValueError):
        call(K, data)
    data.append(1)  # BufferError while an export is held
    array = np.ones(2, dtype=np.float32)
    before = sys.getrefcount(array)
    with pytest.raises(ValueError):
        call(K, array)
    assert sys.getrefcount(array) == before
