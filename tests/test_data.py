import numpy as np

from ibjax.data import VAR_U_SHA256, load_var_u, var_u_sha256

PUBLISHED_SHA256 = "0ba9551878a855396a8de0cbaae620788ede1e7b1eb2b8373bbe017d5ea02036"


def test_shipped_file_matches_published_checksum():
    assert var_u_sha256() == PUBLISHED_SHA256
    assert VAR_U_SHA256 == PUBLISHED_SHA256


def test_var_u_contents():
    data = load_var_u()
    assert data.x.shape == (4096, 12) and data.x.dtype == np.float32
    assert data.y.shape == (4096,) and data.y.dtype == np.int32
    assert int(data.y.sum()) == 2118
    # Every 12-bit pattern once, MSB-first counting order.
    codes = data.x.astype(int) @ (1 << np.arange(11, -1, -1))
    np.testing.assert_array_equal(codes, np.arange(4096))


def test_label_rule_by_number_of_ones():
    # ../shared/data/README.md: p(y=1 | k ones) is 0 for k <= 4 and 1 for k >= 8.
    data = load_var_u()
    ones = data.x.sum(axis=1)
    assert data.y[ones <= 4].max() == 0
    assert data.y[ones >= 8].min() == 1
