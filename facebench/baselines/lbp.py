"""Local binary patterns over whole image stacks, identical to scikit-image.

:func:`lbp_codes` gives, for every image of a stack, exactly the codes that
:func:`skimage.feature.local_binary_pattern` gives for that image alone (same
sampling points, same bilinear interpolation in float64, same zero padding
outside the image, same code tables), but computes them with array
operations over many images at once instead of a per-pixel loop.
:func:`lbp_histograms` turns the codes into normalised per-cell histograms.

How the codes stay identical
----------------------------
scikit-image samples neighbour ``i`` of pixel ``(r, c)`` at
``(r + rp[i], c + cp[i])`` with ``rp``, ``cp`` rounded to 5 decimals and
interpolates bilinearly::

    top    = (1 - dc) * I[minr, minc] + dc * I[minr, maxc]
    bottom = (1 - dc) * I[maxr, minc] + dc * I[maxr, maxc]
    value  = (1 - dr) * top + dr * bottom

with ``dr = (r + rp) - floor(r + rp)`` (which differs from row to row in the
last bit, so it is kept per row here, and ``dc`` per column). The same float64
operations are done here on whole arrays, each product and sum rounded
exactly as in scikit-image, so every interpolated value, and therefore every
comparison with the centre pixel, is bit-for-bit the same. ``top`` depends
only on the column offset, so it is computed once per distinct ``cp`` and
shared by the neighbours that have it. Where ``dr`` or ``dc`` is exactly 0 the
interpolation reduces exactly to a shifted copy, which is what is used
(compared as integers for uint8 images).

Products are shared too. ``cp`` and ``-cp`` weigh the same pixel with (about)
the same weights, ``1 - x`` and ``x``: ``top`` for ``cp = 0.70711`` is
``0.29289 * I[c] + 0.70711 * I[c + 1]`` and for ``-0.70711`` it is
``0.70711 * I[c - 1] + 0.29289 * I[c]``, so the image times each weight is
computed once and each ``top`` is one sum of two shifted products (likewise
the rows of a ``top`` for the neighbours above and below). Floating-point
products and sums do not depend on the order of their operands, so this is
exact wherever the shared weight is bit-for-bit the term's own weight; the
few columns and rows where the two differ in the last bit (a handful per
image) are recomputed with scikit-image's own weights.

Speed comes from the layout: the images of a chunk follow each other in one
flat zero-padded buffer (rows of ``pc`` zero columns then the pixels, images
separated by ``pr`` zero rows, ``pc`` and ``pr`` the farthest sampled pixel),
so a neighbour at (dy, dx) is a constant distance along it, every step above
is a product or sum of long contiguous slices, and pixels outside the image
read zeros, as in scikit-image. Chunks of images keep the float64 arrays in
cache, and their work arrays are reused from chunk to chunk. The codes are
packed into bits and mapped through a lookup table (``uniform``, ``ror``,
``nri_uniform``; two uint8 codes at a time).

Notes (scikit-image's definitions, kept as they are)
----------------------------------------------------
* ``uniform`` counts 0/1 transitions along the P neighbours *without*
  wrapping from the last to the first (so it is not the circular count of
  Ojala et al.).
* ``var`` is the biased variance ``(sum(t**2) - sum(t)**2 / P) / P`` of the
  P interpolated neighbour values (a float, NaN where it is 0).
* ``R`` is used as a 32-bit float, as scikit-image passes it to its kernel.

References
----------
.. [1] T. Ojala, M. Pietikainen, T. Maenpaa, "Multiresolution gray-scale and
       rotation invariant texture classification with local binary patterns",
       IEEE TPAMI 24(7), 971-987, 2002. :DOI:`10.1109/TPAMI.2002.1017623`
"""

from __future__ import annotations

import functools
import numbers
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from facebench.machine import usable_cores

__all__ = ["LBP_METHODS", "lbp_codes", "lbp_histograms", "lbp_n_bins"]

#: Methods :func:`lbp_codes` supports (all of scikit-image's).
LBP_METHODS = ("default", "ror", "uniform", "nri_uniform", "var")

# P above this makes the 2**P lookup tables of "ror" and "nri_uniform" too big.
_MAX_P_TABLE = 20
# Upper bound on P: default codes are held in uint32.
_MAX_P = 31
# Pixels (n * h * w) handled per chunk: keeps the float64 temporaries in cache.
_CHUNK_PIXELS = 1 << 16


def _check_params(P, R, method):
    if isinstance(P, bool) or not isinstance(P, numbers.Integral) or not 1 <= P <= _MAX_P:
        raise ValueError(f"P must be an integer from 1 to {_MAX_P} (number of neighbours); got P={P!r}")
    if isinstance(R, bool) or not isinstance(R, numbers.Real) or not np.isfinite(R) or R <= 0:
        raise ValueError(f"R must be a positive number (radius in pixels); got R={R!r}")
    if not isinstance(method, str) or method.lower() not in LBP_METHODS:
        raise ValueError(f"method must be one of {LBP_METHODS}; got method={method!r}")
    method = method.lower()
    if method in ("ror", "nri_uniform") and P > _MAX_P_TABLE:
        raise ValueError(
            f"method={method!r} is supported for P <= {_MAX_P_TABLE} (it uses a 2**P lookup table); got P={P}"
        )
    return int(P), float(np.float32(R)), method


def _check_images(images, name="images"):
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[np.newaxis]
    if images.ndim != 3:
        raise ValueError(
            f"{name} must be a 2-D image (h, w) or a stack of shape (n, h, w); got an array of shape {images.shape}"
        )
    if images.dtype.kind not in "uif" or images.dtype == np.float16:
        raise ValueError(f"{name} must hold integer or float pixels; got dtype {images.dtype}")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if images.shape[1] < 1 or images.shape[2] < 1:
        raise ValueError(f"{name} must have at least 1 row and 1 column; got shape {images.shape}")
    return images


def lbp_n_bins(P, method):
    """Number of distinct codes (histogram bins) of an integer LBP method.

    Parameters
    ----------
    P : int
        Number of neighbours.
    method : {"default", "ror", "uniform", "nri_uniform"}
        LBP method; ``"var"`` gives real values and has no bins.

    Returns
    -------
    n_bins : int
        Codes lie in ``range(n_bins)``.

    Raises
    ------
    ValueError
        For ``method="var"`` or an unknown method.
    """
    P, _, method = _check_params(P, 1, method)
    if method == "var":
        raise ValueError("method='var' gives real-valued codes, not bins; use 'uniform', 'nri_uniform', 'ror' or 'default'")
    return {"default": 2**P, "ror": 2**P, "uniform": P + 2, "nri_uniform": P * (P - 1) + 3}[method]


def _code_dtype(P, method):
    if method == "var":
        return np.float64
    top = lbp_n_bins(P, method) - 1
    return np.min_scalar_type(top) if top > 0 else np.uint8


@functools.lru_cache(maxsize=16)
def _lookup_table(P, method):
    """Map every default code (0..2**P-1) to its ``ror``, ``uniform`` or ``nri_uniform`` code."""
    codes = np.arange(2**P, dtype=np.int64)
    bits = (codes[:, None] >> np.arange(P)) & 1  # (2**P, P), bit i = neighbour i
    if method == "ror":
        mask = 2**P - 1
        best = codes.copy()
        rot = codes.copy()
        for _ in range(1, P):
            rot = (rot >> 1) | ((rot & 1) << (P - 1))
            np.minimum(best, rot & mask, out=best)
        return best.astype(_code_dtype(P, method))
    changes = (bits[:, :-1] != bits[:, 1:]).sum(axis=1)  # not circular, as in skimage
    n_ones = bits.sum(axis=1)
    if method == "uniform":
        return np.where(changes <= 2, n_ones, P + 1).astype(_code_dtype(P, method))
    # nri_uniform, as scikit-image numbers it
    first_one = np.where(bits.any(axis=1), bits.argmax(axis=1), -1)
    first_zero = np.where((bits == 0).any(axis=1), (bits == 0).argmax(axis=1), -1)
    rot_index = np.where(first_one == 0, n_ones - first_zero, P - first_one)
    table = 1 + (n_ones - 1) * P + rot_index
    table = np.where(n_ones == 0, 0, table)
    table = np.where(n_ones == P, P * (P - 1) + 1, table)
    table = np.where(changes <= 2, table, P * (P - 1) + 2)
    return table.astype(_code_dtype(P, method))


@functools.lru_cache(maxsize=16)
def _pair_table(P, method):
    """:func:`_lookup_table` for two uint8 codes at once, read as one uint16.

    ``np.take`` costs about the same per index whatever the table, so looking
    up pairs of codes halves the time. Built through a byte view, so it holds
    on either byte order.
    """
    table = np.zeros(256, dtype=np.uint8)  # codes < 2**P; the rest is never looked up
    table[: 2**P] = _lookup_table(P, method)
    pairs = np.arange(2**16, dtype=np.uint16).view(np.uint8)  # the two bytes of every uint16, in memory order
    return table[pairs].view(np.uint16)


def _offsets(P, R):
    """Sampling offsets exactly as scikit-image computes them."""
    angles = 2 * np.pi * np.arange(P, dtype=np.float64) / P
    rp = np.round(-R * np.sin(angles), 5)
    cp = np.round(R * np.cos(angles), 5)
    return rp, cp


def _axis_plan(n, offset):
    """Neighbour offsets and interpolation weights along one axis.

    Returns ``(lo, hi, frac)``: the pixel ``i`` is interpolated between
    ``i + lo`` and ``i + hi`` with weight ``frac[i]`` on the second, exactly as
    scikit-image computes them (``frac`` varies in its last bits from pixel to
    pixel, so it is kept per pixel); ``frac`` is None where it is 0 everywhere.
    """
    pos = np.arange(n, dtype=np.float64) + offset
    lo = np.floor(pos).astype(np.intp) - np.arange(n)
    hi = np.ceil(pos).astype(np.intp) - np.arange(n)
    frac = pos - np.floor(pos)
    # offsets are rounded to 5 decimals, so floor(i + offset) - i is the same for every i
    if np.ptp(lo) or np.ptp(hi):  # pragma: no cover - needs images of ~1e9 pixels a side
        raise ValueError(f"LBP offset {offset} does not give a constant shift over {n} pixels")
    return int(lo[0]), int(hi[0]), (None if not frac.any() else frac)


def _share_products(terms):
    """Group interpolation terms that (nearly) share their weights, to share their products.

    Each term is a weight per source position (NaN where the weight is never
    used on a real pixel). Terms whose weights agree to 1e-9 wherever both are
    used form a group with one weight array (the first member's value at each
    position), so that one product ``source * weight`` serves them all. The
    weights of a group's members are equal bit-for-bit at most positions, not
    all (they come from different ``c + offset - floor(c + offset)``):
    returns, per term, the positions where its own weight differs from the
    group's, to be recomputed with the term's own weight.

    Returns ``(weights, group_of_term, mismatches_of_term)``. Exactness never
    depends on the grouping: every position either has the term's own weight
    or is recomputed; the 1e-9 only decides what is worth sharing.
    """
    groups, group_of = [], []
    for t in terms:
        for g, omega in enumerate(groups):
            both = ~np.isnan(omega) & ~np.isnan(t)
            if np.all(np.abs(omega[both] - t[both]) <= 1e-9):
                groups[g] = np.where(np.isnan(omega), t, omega)
                break
        else:
            groups.append(np.array(t, dtype=np.float64))
            g = len(groups) - 1
        group_of.append(g)
    weights = [np.nan_to_num(omega, nan=0.0) for omega in groups]
    mismatches = [np.flatnonzero(~np.isnan(t) & (t != weights[g])) for t, g in zip(terms, group_of)]
    return weights, group_of, mismatches


def _term(n, shift, frac):
    """Weight on source position ``x = i + shift`` of output ``i``, by x (NaN where x or i is outside 0..n-1)."""
    t = np.full(n, np.nan)
    i = np.arange(n)
    x = i + shift
    inside = (x >= 0) & (x < n)
    t[x[inside]] = frac[i[inside]]
    return t


@functools.lru_cache(maxsize=4)
def _make_plan(P, R, h, w, m):
    """Everything about the sampling of (P, R) on h x w images that does not depend on the pixels.

    ``m`` is the largest number of images per chunk (sizes the weight arrays).
    Cached, and shared between threads: nothing in it is modified afterwards.
    """
    rp, cp = _offsets(P, R)
    cols = {}
    points = []
    for i in range(P):
        key = float(cp[i])
        if key not in cols:
            cols[key] = _axis_plan(w, cp[i])
        points.append((key, *_axis_plan(h, rp[i])))

    # The flat layout (see the module docstring): each image row is ``pc`` zero
    # columns then the ``w`` pixels (W = w + pc elements); each image is h such
    # rows then ``pr`` zero rows (S = (h + pr) * W elements); the chunk is
    # ``pr + 1`` zero rows, the m images, ``pr + 1`` zero rows. pc and pr are
    # the farthest any sampled pixel lies from its centre (the exact floor/ceil
    # shifts of _axis_plan: no extra margin is needed), so a neighbour at
    # (dy, dx) is always the element dy * W + dx further on: a zero whenever it
    # is outside the image (a column past the right edge lands in the next
    # row's zero columns, a row past the bottom in the zero rows that follow).
    pc = max([0] + [max(-lo, hi) for lo, hi, _ in cols.values()])
    pr = max([0] + [max(-lo, hi) for _, lo, hi, _ in points])
    W = w + pc
    S = (h + pr) * W
    T = (2 * (pr + 1) + m * (h + pr)) * W  # elements of a chunk of m images
    plan = {"h": h, "w": w, "pc": pc, "pr": pr, "W": W, "S": S, "B": (pr + 1) * W, "cols": cols, "points": points}

    # Horizontal step, top = (1 - dc) * I[minc] + dc * I[maxc], for each
    # distinct non-integer column offset: the products of the image with the
    # column weights are shared between offsets (cp and -cp weigh the same
    # pixel with ~1 - x and ~x).
    keys = [key for key, (_, _, dc) in cols.items() if dc is not None]
    terms = []
    for key in keys:
        lo, hi, dc = cols[key]
        terms += [_term(w, lo, 1 - dc), _term(w, hi, dc)]
    weights, group_of, bad = _share_products(terms)
    # weight of every element of the chunk: a row is pc zero columns then the w columns
    plan["col_weights"] = [np.tile(np.concatenate([np.zeros(pc), omega]), T // W) for omega in weights]
    plan["horizontal"] = {}
    for k, key in enumerate(keys):
        lo, hi, dc = cols[key]
        fix = np.union1d(bad[2 * k] - lo, bad[2 * k + 1] - hi)  # output columns to recompute
        plan["horizontal"][key] = (lo, hi, group_of[2 * k], group_of[2 * k + 1], (pc + fix, 1 - dc[fix], dc[fix]))

    # Vertical step, value = (1 - dr) * top + dr * bottom: the products of each
    # source (a horizontal interpolation, or the image for integer column
    # offsets) with the row weights are shared between the neighbours using it.
    sources = {}
    for i, (key, lo, hi, dr) in enumerate(points):
        if dr is not None:
            sources.setdefault(key if cols[key][2] is not None else None, []).append(i)
    plan["row_weights"], plan["vertical"], plan["row_products"] = [], {}, {}
    row_weights = {}  # weights -> index in plan["row_weights"]: sources often have the same ones
    margin = np.zeros((pr + 1) * W)

    def row_weight(omega):
        # weight of every element of the chunk: per image h rows of weights, pr zero rows
        if omega.tobytes() not in row_weights:
            block = np.repeat(np.concatenate([omega, np.zeros(pr)]), W)
            row_weights[omega.tobytes()] = len(plan["row_weights"])
            plan["row_weights"].append(np.concatenate([margin, np.tile(block, m), margin]))
        return row_weights[omega.tobytes()]

    for source, users in sources.items():
        terms = []
        for i in users:
            _, lo, hi, dr = points[i]
            terms += [_term(h, lo, 1 - dr), _term(h, hi, dr)]
        weights, group_of, bad = _share_products(terms)
        plan["row_products"][source] = [row_weight(omega) for omega in weights]
        for k, i in enumerate(users):
            _, lo, hi, dr = points[i]
            fix = np.union1d(bad[2 * k] - lo, bad[2 * k + 1] - hi)  # output rows to recompute
            plan["vertical"][i] = (group_of[2 * k], group_of[2 * k + 1], (fix, (1 - dr[fix])[:, None], dr[fix][:, None]))
    # the neighbours by source (None: the image itself), and those on the pixel grid
    plan["users"], plan["grid"] = {}, []
    for i, (key, lo, hi, dr) in enumerate(points):
        source = key if cols[key][2] is not None else None
        if source is None and dr is None:
            plan["grid"].append(i)
        else:
            plan["users"].setdefault(source, []).append(i)
    plan["float"] = bool(plan["users"])
    for weights in plan["col_weights"] + plan["row_weights"]:
        weights.flags.writeable = False  # shared by every call and thread
    return plan


def _chunk_codes(chunk, P, method, plan, work):
    """LBP codes of one chunk (m, h, w) of uint8 or float64 images.

    Neighbours on the pixel grid are exact shifted copies (compared as integers
    for uint8 input); interpolated ones are computed in float64 with
    scikit-image's formula, on the flat layout of :func:`_make_plan`, with
    products shared between neighbours where their weights are equal.

    ``work`` holds the work arrays from chunk to chunk (allocating ~1 MB arrays
    anew for every chunk costs page faults, as much as the arithmetic). The
    result is a view into it, valid until the next call with the same ``work``.
    """
    m, h, w = chunk.shape
    pc, pr, W, S, B = (plan[k] for k in ("pc", "pr", "W", "S", "B"))
    T = (2 * (pr + 1) + m * (h + pr)) * W
    n_out = m * S  # the outputs: every element of the m image blocks, from B on

    def scratch(name, size, dtype=np.float64):
        array = work.get(name)
        if array is None or array.size < size or array.dtype != dtype:
            array = work[name] = np.zeros(size, dtype=dtype)
        return array[:size]

    # Only the pixels are written: the zeros around them stay from chunk to chunk
    # (the first chunk is the largest; after a smaller one, the space of the
    # images it lacks is zeroed below).
    buf = scratch("buf", T, chunk.dtype)
    buf[B : B + n_out].reshape(m, h + pr, W)[:, :h, pc:] = chunk
    buf[B + n_out :] = 0
    if buf.dtype == np.float64:
        buf64 = buf
    elif plan["float"] or method == "var":
        buf64 = scratch("buf64", T)
        np.copyto(buf64, buf)
    else:
        buf64 = None
    center = buf[B : B + n_out]
    center64 = None if buf64 is None else buf64[B : B + n_out]

    # products of the image with the column weights (the horizontal step's terms)
    n_h = T - 2 * W
    col_products = [np.multiply(buf64, weight[:T], out=scratch(f"col{g}", T)) for g, weight in enumerate(plan["col_weights"])]

    def prepare(source, tag):
        """A source of the vertical step and its products with the row weights, in work arrays named by tag.

        The source is the image (None) or the horizontal interpolation of a
        column offset (over rows 1 .. T / W - 2 of the chunk: ``top[j]`` is
        element ``W + j``); returns ``(source array, its offset, products)``.
        """
        if source is None:
            src, offset = buf64, 0
        else:
            lo, hi, a, b, fix = plan["horizontal"][source]
            src, offset = scratch("top" + tag, n_h), W
            np.add(col_products[a][W + lo : W + lo + n_h], col_products[b][W + hi : W + hi + n_h], out=src)
            positions, w_lo, w_hi = fix
            if len(positions):  # the columns where the shared weights differ in the last bit: skimage's own
                lows = buf64[W + lo : W + lo + n_h].reshape(-1, W)
                highs = buf64[W + hi : W + hi + n_h].reshape(-1, W)
                src.reshape(-1, W)[:, positions] = w_lo * lows[:, positions] + w_hi * highs[:, positions]
        weights = plan["row_weights"]
        products = [
            np.multiply(src, weights[g][offset : offset + len(src)], out=scratch(f"row{k}{tag}", len(src)))
            for k, g in enumerate(plan["row_products"].get(source, []))
        ]
        return src, offset, products

    shape = (n_out,)
    texture = scratch("texture", n_out)
    counting = method == "var" or (method == "uniform" and P > _MAX_P_TABLE)

    def value_of(i, prepared):
        """Neighbour i's interpolated values, or None for an exact grid comparison left in ``bit``."""
        key, rlo, rhi, dr = plan["points"][i]
        clo = plan["cols"][key][0]
        if prepared is None:  # on the pixel grid
            start = B + rlo * W + clo
            if method == "var":
                return buf64[start : start + n_out]
            np.greater_equal(buf[start : start + n_out], center, out=bit)  # exact, in the input dtype
            return None
        src, offset, products = prepared
        dx = clo if offset == 0 else 0  # the image is shifted here, a horizontal interpolation already is
        if dr is None:  # a shifted copy of the source
            start = B + rlo * W + dx - offset
            return src[start : start + n_out]
        a, b, (rows, w_lo, w_hi) = plan["vertical"][i]
        start_lo, start_hi = B + rlo * W + dx - offset, B + rhi * W + dx - offset
        value = np.add(products[a][start_lo : start_lo + n_out], products[b][start_hi : start_hi + n_out], out=texture)
        if len(rows):  # the rows where the shared weights differ in the last bit: skimage's own
            blocks = value.reshape(m, h + pr, W)
            lows = src[start_lo : start_lo + n_out].reshape(m, h + pr, W)
            highs = src[start_hi : start_hi + n_out].reshape(m, h + pr, W)
            blocks[:, rows] = w_lo * lows[:, rows] + w_hi * highs[:, rows]
        return value

    bit = scratch("bit", n_out, bool)
    if counting:
        # "var" sums the neighbours, and "uniform" counts the changes, in their
        # order: every source is kept (in its own work arrays) for the ordered pass
        prepared = {source: prepare(source, f"/{source}") for source in plan["users"]}
        if method == "var":
            total = np.zeros(shape, dtype=np.float64)
            total_sq = np.zeros(shape, dtype=np.float64)
            square = scratch("square", n_out)
        else:
            n_ones = np.zeros(shape, dtype=np.uint8)
            changes = np.zeros(shape, dtype=np.uint8)
            previous = scratch("previous", n_out, bool)
        for i, (key, _, _, dr) in enumerate(plan["points"]):
            source = key if plan["cols"][key][2] is not None else None
            on_grid = source is None and dr is None
            value = value_of(i, None if on_grid else prepared[source])
            if method == "var":
                total += value
                np.multiply(value, value, out=square)
                total_sq += square
                continue
            if value is not None:
                np.greater_equal(value, center64, out=bit)  # skimage's `texture - center >= 0` for finite values
            n_ones += bit
            if i > 0:
                changes += bit != previous
            previous, bit = bit, previous
    else:
        # The bits can be set in any order: one source at a time, reusing the
        # same work arrays (a smaller working set, that stays in cache). They
        # are set in bytes (uint8 operations are the fastest), with one spare
        # element so that uint8 codes can be looked up in pairs (_pair_table).
        planes = [scratch(f"byte{k}", n_out + n_out % 2, np.uint8) for k in range((P + 7) // 8)]
        for plane in planes:
            plane[...] = 0
        shifted = scratch("shifted", n_out, np.uint8)

        def add_bit(i, value):
            if value is not None:
                np.greater_equal(value, center64, out=bit)  # skimage's `texture - center >= 0` for finite values
            # a product with 2**i, not a shift: NumPy's shifts are several times slower
            np.multiply(bit.view(np.uint8), np.uint8(1 << (i % 8)), out=shifted)
            np.bitwise_or(planes[i // 8][:n_out], shifted, out=planes[i // 8][:n_out])

        for i in plan["grid"]:
            add_bit(i, value_of(i, None))
        for source, users in plan["users"].items():
            prepared = prepare(source, "")
            for i in users:
                add_bit(i, value_of(i, prepared))
        if P <= 8:
            code_pairs = planes[0]
            code = code_pairs[:n_out]
        else:
            code = scratch("code", n_out, np.uint32 if P > 16 else np.uint16)
            np.copyto(code, planes[0][:n_out])
            wide = scratch("wide", n_out, code.dtype)
            for k, plane in enumerate(planes[1:], 1):
                np.multiply(plane[:n_out], code.dtype.type(1 << (8 * k)), out=wide)
                code |= wide

    if method == "var":
        out = (total_sq - (total * total) / P) / P
        out[out == 0] = np.nan
    elif counting:
        out = np.where(changes <= 2, n_ones, np.uint8(P + 1))
    elif method == "default":
        out = code
    elif code.dtype == np.uint8:
        out = np.take(_pair_table(P, method), code_pairs.view(np.uint16), out=scratch("pairs", len(code_pairs) // 2, np.uint16))
        out = out.view(np.uint8)[:n_out]
    else:
        out = np.take(_lookup_table(P, method), code)
    return out.reshape(m, h + pr, W)[:, :h, pc:]


def _iter_codes(images, P, R, method, chunk_pixels=_CHUNK_PIXELS):
    """Yield ``(start, codes)`` for consecutive chunks of a validated (n, h, w) stack.

    Each ``codes`` is only valid until the next one is asked for (it lives in
    work arrays that are reused).
    """
    n, h, w = images.shape
    step = max(1, min(n, chunk_pixels // (h * w)))
    plan = _make_plan(P, R, h, w, step)
    work = {}
    for start in range(0, n, step):
        chunk = images[start : start + step]
        if chunk.dtype != np.uint8:
            chunk = chunk.astype(np.float64)
        yield start, _chunk_codes(chunk, P, method, plan, work)


def _resolve_jobs(n_jobs):
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive int, -1 (every core) or None; got n_jobs={n_jobs!r}")
    return usable_cores() if n_jobs == -1 else int(n_jobs)


def _in_blocks(n, n_jobs, work):
    """Run ``work(lo, hi)`` over ``n_jobs`` contiguous blocks of ``range(n)``, in threads.

    The NumPy kernels release the GIL, so the threads run on several cores.
    """
    edges = np.linspace(0, n, min(n_jobs, max(n, 1)) + 1).astype(int)
    if len(edges) <= 2:
        work(0, n)
        return
    with ThreadPoolExecutor(len(edges) - 1) as pool:
        for future in [pool.submit(work, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]:
            future.result()


def lbp_codes(images, P=8, R=1, method="uniform", *, n_jobs=None):
    """Local binary pattern codes of every pixel of every image in a stack.

    Gives exactly the values of ``skimage.feature.local_binary_pattern(image, P, R, method)``
    for each image, edges included, and is much faster on stacks (it works on
    many images at once with array operations).

    Parameters
    ----------
    images : array-like of shape (n_images, height, width) or (height, width)
        Grayscale images; integer dtypes (uint8) are recommended, as for
        scikit-image (float images can have near-ties that flip codes).
    P : int, default=8
        Number of circularly symmetric neighbours (1 to 31).
    R : float, default=1
        Radius of the circle, in pixels (> 0).
    method : {"default", "ror", "uniform", "nri_uniform", "var"}, default="uniform"
        Code definition, as in scikit-image. ``"ror"`` and ``"nri_uniform"`` need
        ``P <= 20``.
    n_jobs : int, optional
        Threads working on blocks of the stack (-1: every core); ``None``: 1.

    Returns
    -------
    codes : ndarray of shape (n_images, height, width)
        The smallest unsigned integer dtype that holds every code of the method,
        or float64 for ``"var"`` (NaN where the neighbours do not vary). A 2-D
        input gives a 2-D output.

    Raises
    ------
    ValueError
        If ``images`` is not 2-D or 3-D numeric, or ``P``, ``R`` or ``method`` is invalid.

    See Also
    --------
    skimage.feature.local_binary_pattern : the per-image reference.
    lbp_histograms : per-cell histograms of these codes.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(16, dtype=np.uint8).reshape(4, 4)
    >>> lbp_codes(img, P=8, R=1).shape
    (4, 4)
    """
    single = np.ndim(images) == 2
    images = _check_images(images)
    P, R, method = _check_params(P, R, method)
    out = np.empty(images.shape, dtype=_code_dtype(P, method))

    def work(lo, hi):
        for start, codes in _iter_codes(images[lo:hi], P, R, method):
            out[lo + start : lo + start + len(codes)] = codes

    _in_blocks(len(images), _resolve_jobs(n_jobs), work)
    return out[0] if single else out


def _cell_edges(size, n_cells, axis_name):
    if n_cells > size:
        raise ValueError(f"grid asks for {n_cells} cells along {axis_name} but the images have only {size} pixels there")
    return (np.arange(n_cells + 1) * size) // n_cells


def lbp_histograms(images, P=8, R=1, method="uniform", grid=(8, 8), radii=None, *, n_jobs=None):
    """Normalised histograms of LBP codes over a grid of cells.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width)
        Grayscale images (uint8 recommended).
    P : int, default=8
        Number of neighbours.
    R : float, default=1
        Radius; ignored when ``radii`` is given.
    method : {"uniform", "nri_uniform", "ror", "default"}, default="uniform"
        LBP code definition (see :func:`lbp_codes`); ``"var"`` is not binned.
    grid : tuple of int (rows, cols), default=(8, 8)
        Number of cells; cell borders are at ``i * height // rows`` (so sizes
        differ by at most one pixel when the image does not divide evenly).
    radii : sequence of float, optional
        Several radii (multi-scale LBP): the histograms for each radius, all with
        the same ``P`` and ``method``, are concatenated in this order.
    n_jobs : int, optional
        Threads working on blocks of the stack (-1: every core); ``None``: 1.

    Returns
    -------
    features : ndarray of shape (n_images, n_radii * rows * cols * n_bins), float32
        For each radius, each cell (row-major), the fraction of the cell's pixels
        with each code; ``n_bins`` is :func:`lbp_n_bins` ``(P, method)``.

    Raises
    ------
    ValueError
        On a bad stack, parameter, grid, or ``method="var"``.
    """
    images = _check_images(images)
    radii_list = [R] if radii is None else list(np.atleast_1d(radii))
    if len(radii_list) == 0:
        raise ValueError("radii must hold at least one radius; got an empty sequence")
    checked = [_check_params(P, r, method) for r in radii_list]
    n_bins = lbp_n_bins(P, method)
    try:
        gy, gx = (int(v) for v in grid)
    except (TypeError, ValueError):
        raise ValueError(f"grid must be a pair of positive integers (rows, cols); got grid={grid!r}") from None
    if gy < 1 or gx < 1:
        raise ValueError(f"grid must be a pair of positive integers (rows, cols); got grid={grid!r}")
    n, h, w = images.shape
    ey, ex = _cell_edges(h, gy, "height"), _cell_edges(w, gx, "width")
    cell_of_row = np.searchsorted(ey, np.arange(h), side="right") - 1
    cell_of_col = np.searchsorted(ex, np.arange(w), side="right") - 1
    cell_map = (cell_of_row[:, None] * gx + cell_of_col[None, :]).astype(np.int64) * n_bins  # (h, w)
    cell_sizes = (np.diff(ey)[:, None] * np.diff(ex)[None, :]).ravel().astype(np.float32)  # (gy*gx,)
    block = gy * gx * n_bins
    out = np.empty((n, len(checked) * block), dtype=np.float32)
    n_jobs = _resolve_jobs(n_jobs)

    def work(lo, hi):
        for k, (P_, R_, method_) in enumerate(checked):
            for start, codes in _iter_codes(images[lo:hi], P_, R_, method_):
                m = len(codes)
                index = codes.astype(np.int64) + cell_map + (np.arange(m, dtype=np.int64) * block)[:, None, None]
                counts = np.bincount(index.ravel(), minlength=m * block).reshape(m, gy * gx, n_bins)
                rows = slice(lo + start, lo + start + m)
                out[rows, k * block : (k + 1) * block] = (counts / cell_sizes[None, :, None]).reshape(m, block)

    _in_blocks(n, n_jobs, work)
    return out
