"""Arrays larger than memory: memory-mapped ``.npz`` members, joined along an axis.

A sketch folder keeps its series in one ``.npz`` file per shard.  ``np.savez``
stores members uncompressed, so a member's bytes lie contiguous in the file:
:func:`memmap_member` maps them read-only without reading them (``np.load``'s
``mmap_mode`` ignores ``.npz`` archives).  :class:`Joined` presents the
members of all shards as one array of shape ``(K, M, P)``: slicing directions
``[:, a:b]`` inside one shard returns a view of its map, anything else copies
only what it covers.  Nothing is unpickled (object arrays are refused).
"""

import struct
import zipfile

import numpy as np

_LOCAL_HEADER = struct.Struct("<4s22sHH")     # signature, fixed fields, name length, extra length


def memmap_member(path, name):
    """The array ``name`` of the ``.npz`` file ``path``, memory-mapped read-only.

    ``ValueError`` if the member is missing, compressed, of object dtype or its
    header is damaged.
    """
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"member {name!r} is compressed and cannot be memory-mapped")
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        signature, _, name_length, extra_length = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
        if signature != b"PK\x03\x04":
            raise ValueError(f"member {name!r}: damaged zip header")
        start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        f.seek(start)
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"member {name!r}: .npy format version {version} is not supported")
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if dtype.hasobject:
        raise ValueError(f"member {name!r} holds Python objects")
    size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if offset - start + size > info.file_size:
        raise ValueError(f"member {name!r} is shorter than its header says")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


class Joined:
    """Arrays of equal shape but for axis 1, joined along axis 1 without copying.

    Has ``shape``, ``dtype``, ``ndim``, ``pieces``, ``bounds`` (the start of each
    piece along axis 1, and the end); ``np.asarray(joined)`` builds the whole
    array in memory.
    """

    def __init__(self, pieces):
        self.pieces = list(pieces)
        if not self.pieces:
            raise ValueError("Joined needs at least one piece")
        first = self.pieces[0]
        if any(p.dtype != first.dtype or p.ndim != first.ndim or p.shape[:1] + p.shape[2:]
               != first.shape[:1] + first.shape[2:] for p in self.pieces):
            raise ValueError("pieces differ in dtype or in a shape other than along axis 1")
        self.bounds = np.cumsum([0] + [p.shape[1] for p in self.pieces])
        self.dtype = first.dtype
        self.shape = first.shape[:1] + (int(self.bounds[-1]),) + first.shape[2:]
        self.ndim = first.ndim

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"Joined(shape={self.shape}, dtype={self.dtype}, pieces={len(self.pieces)})"

    def __array__(self, dtype=None, copy=None):
        whole = np.concatenate([np.asarray(p) for p in self.pieces], axis=1)
        return whole if dtype is None else whole.astype(dtype)

    def __getitem__(self, key):
        """``[:, a:b]`` (and ``[:, a:b, ...]``): a view when inside one piece."""
        if (isinstance(key, tuple) and len(key) >= 2 and key[0] == slice(None)
                and isinstance(key[1], slice) and key[1].step in (None, 1)):
            start, stop, _ = key[1].indices(self.shape[1])
            stop = max(start, stop)
            rest = key[2:]
            parts = []
            for piece, lo, hi in zip(self.pieces, self.bounds[:-1], self.bounds[1:]):
                a, b = max(start, lo), min(stop, hi)
                if a < b or (start == stop and lo <= start < hi and not parts):
                    parts.append(np.asarray(piece)[(slice(None), slice(a - lo, b - lo)) + rest])
            if len(parts) == 1:
                return parts[0]
            if not parts:
                return np.asarray(self.pieces[0])[(slice(None), slice(0, 0)) + rest]
            return np.concatenate(parts, axis=1)
        return np.asarray(self)[key]
