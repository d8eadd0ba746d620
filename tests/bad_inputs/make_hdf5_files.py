"""Writes the crafted BIOM 2.1 HDF5 tables of the bad-input catalogue (run from this folder
with the test venv: `../../.venv/bin/python make_hdf5_files.py`). They are committed; this
script records how they were made. Each is a valid HDF5 file of about 12 KB whose one
chunked dataset declares a shape but stores no chunks, so it reads back as fill values:
a reader that trusts the declared shape allocates in proportion to it, not to the file.

- files/declared-data-1e9.biom: `sample/matrix/data` declares 10^9 counts (8 GB as f64)
  for a table of 2 samples and 3 ASVs.
- files/declared-ids-1e9.biom: `sample/ids` declares 10^9 sample IDs.
- files/declared-matrix-1e5.h5: an ssu distance matrix whose `matrix` declares
  [100000, 100000] (80 GB as f64).
"""
import h5py
import numpy as np


def table(path, n_data=None, n_ids=None):
    with h5py.File(path, "w") as f:
        f.attrs["format-version"] = [2, 1]
        s = h5py.string_dtype()
        if n_ids is None:
            f.create_dataset("sample/ids", data=np.array(["S1", "S2"], dtype=object), dtype=s)
        else:
            f.create_dataset("sample/ids", shape=(n_ids,), dtype=s, chunks=(1024,))
        f.create_dataset("observation/ids", data=np.array(["ACGT", "ACGA", "ACGC"], dtype=object), dtype=s)
        f.create_dataset("sample/matrix/indptr", data=np.array([0, 1, 2], dtype=np.int64))
        f.create_dataset("sample/matrix/indices", data=np.array([0, 1], dtype=np.int64))
        if n_data is None:
            f.create_dataset("sample/matrix/data", data=np.array([3.0, 4.0]))
        else:
            f.create_dataset("sample/matrix/data", shape=(n_data,), dtype="f8", chunks=(1024,))


def ssu_matrix(path, n):
    with h5py.File(path, "w") as f:
        f.create_dataset("matrix", shape=(n, n), dtype="f8", chunks=(256, 256))
        f.create_dataset("order", data=np.array(["S1", "S2"], dtype=object), dtype=h5py.string_dtype())


table("files/declared-data-1e9.biom", n_data=10**9)
table("files/declared-ids-1e9.biom", n_ids=10**9)
ssu_matrix("files/declared-matrix-1e5.h5", 10**5)
