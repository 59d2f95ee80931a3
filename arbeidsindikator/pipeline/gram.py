"""Sufficient statistics from integer codes: X'WX, X'Wy and per-cluster scores with
`np.bincount` over blocks of terms, never a dense one-hot matrix; sums per partition added
up; collinear and empty columns dropped in order."""

from __future__ import annotations

import numpy as np

from .design import TermCoding

COLLINEAR_TOL = 1e-9
BLOCK_CELLS = 256  # level combinations per block of terms in the gram (see Layout._blocks)


class Layout:
    """Columns of the full one-hot design: intercept, every level of every coded term, continuous."""

    def __init__(self, codings: list[TermCoding], block_cells: int = BLOCK_CELLS):
        self.codings = codings
        self.coded = [c for c in codings if c.is_coded]
        self.cont = [c for c in codings if not c.is_coded]
        self.sizes = [len(c.levels) + 1 for c in self.coded]  # +1: unseen level (predicted as reference)
        self.offsets = np.cumsum([1] + self.sizes[:-1]).tolist() if self.coded else []
        self.p = 1 + sum(self.sizes) + len(self.cont)
        names, base = ["(Intercept)"], []
        for c in self.coded:
            names += [f"{c.term.column}[{lv}]" for lv in c.levels] + [f"{c.term.column}[<unseen>]"]
        names += [c.term.column for c in self.cont]
        self.names = names
        # columns that are never estimable: reference levels and the 'unseen' slot
        for c, off, size in zip(self.coded, self.offsets, self.sizes):
            base += [off + c.reference, off + size - 1]
        self.structural_zero = sorted(base)
        self.blocks = self._blocks(block_cells)

    def _blocks(self, block_cells: int) -> list[dict]:
        """Consecutive coded terms joined into blocks of at most `block_cells` level combinations.

        A gram over blocks needs one bincount per pair of blocks instead of one per pair of
        terms (Nav's eleven terms: 4 blocks, 10 bincounts instead of 66). Each block's joint
        code J = sum of code_t * stride_t maps back to the terms' columns through the 0/1
        matrix `onehot` (cells x the block's columns), which is contiguous in the layout."""
        groups, cur, cells = [], [], 1
        for t, size in enumerate(self.sizes):
            if cur and cells * size > block_cells:
                groups.append(cur)
                cur, cells = [], 1
            cur.append(t)
            cells *= size
        if cur:
            groups.append(cur)
        blocks = []
        for g in groups:
            sizes = [self.sizes[t] for t in g]
            strides = np.cumprod([1] + sizes[:-1]).tolist()
            n_cells = int(np.prod(sizes))
            start = self.offsets[g[0]]
            onehot = np.zeros((n_cells, sum(sizes)))
            j = np.arange(n_cells)
            col0 = 0
            for size, stride in zip(sizes, strides):
                onehot[j, col0 + (j // stride) % size] = 1.0
                col0 += size
            blocks.append({"terms": g, "strides": strides, "cells": n_cells, "onehot": onehot,
                           "cols": slice(start, start + sum(sizes))})
        return blocks

    def _joint(self, codes: list[np.ndarray]) -> list[np.ndarray]:
        """Every block's joint code per row."""
        out = []
        for b in self.blocks:
            j = codes[b["terms"][0]].astype(np.intp, copy=True)
            for t, stride in zip(b["terms"][1:], b["strides"][1:]):
                j += codes[t] * np.intp(stride)  # a NumPy scalar: the product is widened, not int8
            out.append(j)
        return out

    def cross(self, codes: list[np.ndarray], conts: list[np.ndarray], a: np.ndarray, joint=None) -> np.ndarray:
        """X' a for the full design."""
        out = np.empty(self.p)
        out[0] = a.sum()
        for b, j in zip(self.blocks, joint if joint is not None else self._joint(codes)):
            out[b["cols"]] = np.bincount(j, weights=a, minlength=b["cells"]) @ b["onehot"]
        for k, x in enumerate(conts):
            out[1 + sum(self.sizes) + k] = (a * x).sum()
        return out

    def gram(self, codes: list[np.ndarray], conts: list[np.ndarray], a: np.ndarray, joint=None) -> np.ndarray:
        """X' diag(a) X for the full design, from co-occurrence counts of the blocks' joint
        codes (no one-hot matrix of the rows)."""
        p, g = self.p, np.zeros((self.p, self.p))
        joint = joint if joint is not None else self._joint(codes)
        g[0] = self.cross(codes, conts, a, joint)
        k0 = 1 + sum(self.sizes)
        for i, (bi, ji) in enumerate(zip(self.blocks, joint)):
            cnt = np.bincount(ji, weights=a, minlength=bi["cells"])
            g[bi["cols"], bi["cols"]] = bi["onehot"].T @ (cnt[:, None] * bi["onehot"])
            for bj, jj in zip(self.blocks[i + 1:], joint[i + 1:]):
                co = np.bincount(ji * bj["cells"] + jj, weights=a, minlength=bi["cells"] * bj["cells"])
                g[bi["cols"], bj["cols"]] = bi["onehot"].T @ co.reshape(bi["cells"], bj["cells"]) @ bj["onehot"]
            for k, x in enumerate(conts):
                g[bi["cols"], k0 + k] = np.bincount(ji, weights=a * x, minlength=bi["cells"]) @ bi["onehot"]
        for k, x in enumerate(conts):
            for m in range(k, len(conts)):
                g[k0 + k, k0 + m] = (a * x * conts[m]).sum()
        iu = np.triu_indices(p, 1)
        g[(iu[1], iu[0])] = g[iu]
        g[:, 0] = g[0]
        return g

    def cluster_scores(self, cluster: np.ndarray, n_clusters: int, codes, conts, a: np.ndarray) -> np.ndarray:
        """S[g] = sum over the cluster's rows of x * a  (n_clusters x p).

        Stored column by column (the transpose is filled): each term's block of columns is then
        one contiguous write, where row-major storage made strided writes that cost three times
        the bincounts. Callers see an ordinary n_clusters x p array."""
        s = np.empty((self.p, n_clusters))
        s[0] = np.bincount(cluster, weights=a, minlength=n_clusters)
        for c, off, size in zip(codes, self.offsets, self.sizes):
            s[off:off + size] = np.bincount(c * np.intp(n_clusters) + cluster, weights=a, minlength=size * n_clusters).reshape(size, n_clusters)
        k0 = 1 + sum(self.sizes)
        for j, x in enumerate(conts):
            s[k0 + j] = np.bincount(cluster, weights=a * x, minlength=n_clusters)
        return s.T

    def predict(self, beta_full: np.ndarray, codes, conts) -> np.ndarray:
        yhat = np.full(len(codes[0]) if codes else len(conts[0]), beta_full[0])
        for c, off, size in zip(codes, self.offsets, self.sizes):
            yhat += beta_full[off:off + size][c]
        k0 = 1 + sum(self.sizes)
        for j, x in enumerate(conts):
            yhat += beta_full[k0 + j] * x
        return yhat


class _RowSets:
    """A batch's code and value arrays restricted to a row mask, with the blocks' joint codes;
    computed once per distinct mask (outcomes observed on the same rows share them), and
    without copies when the mask keeps every row."""

    def __init__(self, layout: "Layout", codes, conts):
        self.layout, self.codes, self.conts, self.cache = layout, codes, conts, {}

    def get(self, m: np.ndarray):
        key = m.tobytes()
        if key not in self.cache:
            if m.all():
                cm, xm = self.codes, self.conts
            else:
                cm, xm = [c[m] for c in self.codes], [x[m] for x in self.conts]
            self.cache[key] = (cm, xm, self.layout._joint(cm))
        return self.cache[key]


def _select_columns(xtx: np.ndarray, candidates: list[int], layout: Layout, notes: list[str]) -> list[int]:
    """Keep columns in order, dropping empty and collinear ones (sequential Cholesky)."""
    kept: list[int] = []
    for j in candidates:
        if xtx[j, j] <= 0:
            notes.append(f"{layout.names[j]} har ingen observasjoner i estimeringsutvalget og er utelatt")
            continue
        if kept:
            a = xtx[np.ix_(kept, kept)]
            b = xtx[kept, j]
            resid = xtx[j, j] - b @ np.linalg.solve(a, b)
        else:
            resid = xtx[j, j]
        if resid <= COLLINEAR_TOL * xtx[j, j]:
            notes.append(f"{layout.names[j]} er kollineær med andre variabler og er utelatt")
            continue
        kept.append(j)
    return kept
