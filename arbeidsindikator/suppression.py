"""Small-cell protection: primary and secondary suppression.

Primary: a cell with fewer than `min_persons` persons is published without values (for
cells spanning several months: fewer than `min_persons` different persons).

Secondary: a suppressed value must not be recoverable by subtraction. Published cells form
families whose children add up to a parent:
- the groups of a breakdown add up to the unit's 'Alle' cell;
- the offices of a region add up to the region, and the regions (with NOE) to the country,
  for the same breakdown group.
If a family with a published parent has exactly one suppressed child, that child's persons
and sums follow from the parent minus the others. The family's smallest other child is then
suppressed too. If there is no other child (the child is the whole parent), the parent is
suppressed instead. This repeats until no family has a single suppressed child, because new
suppressions can open other families.

Counts (ANTALL_PERSONER) stay visible. The count of users under follow-up is not the
sensitive part; their employment outcomes are. Every value derived from outcomes is removed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRIMARY = "færre personer enn terskelen"
SECONDARY = "sekundærprikket (kunne ellers regnes ut fra andre celler)"
SUPPRESSED_VALUES = ["faktisk", "forventet", "INDIKATOR", "faktisk_SE", "forventet_SE", "INDIKATOR_SE",
                     "faktisk_KI_NEDRE", "faktisk_KI_OVRE", "forventet_KI_NEDRE", "forventet_KI_OVRE",
                     "INDIKATOR_KI_NEDRE", "INDIKATOR_KI_OVRE", "KOV_INDIKATOR_FAKTISK", "model_var", "model_var_indicator",
                     "var_y", "var_e"]


def _time_key(d: pd.DataFrame) -> str:
    return "BEHOLDNINGSMAANED" if "BEHOLDNINGSMAANED" in d.columns else "PERIODE"


def _codes(k: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """One integer per distinct combination of `cols`."""
    return k.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()


def _sorted_codes(col: pd.Series) -> np.ndarray:
    """Integer codes in the sort order of the values (a missing value last), to sort rows by."""
    codes = pd.factorize(col, sort=True)[0]
    return np.where(codes < 0, codes.max() + 1, codes)


def suppress(d: pd.DataFrame, min_persons: int, count: str = "ANTALL_PERSONER") -> pd.DataFrame:
    """`count`: the column the threshold applies to (unique persons for multi-month cells, so
    one person's many months never make a cell publishable)."""
    # a fixed row order and a full tie-break make the pattern reproducible: the cells arrive
    # from a parallel GROUP BY in no particular order, and equal counts are common. The rows
    # are worked on in that order through `order`; the frame itself is not re-sorted.
    t = _time_key(d)
    sort_keys = [t, "ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE"]
    order = np.lexsort([_sorted_codes(d[c]) for c in reversed(sort_keys)])
    supp = (d[count] < min_persons).to_numpy()[order]
    reason = np.where(supp, PRIMARY, None).astype(object)
    # families and parents as integer keys: every key column is factorized once (grouping by
    # strings, or turning them into pandas strings, cost most of the time at scale)
    level = d["ORG_NIVAA"].to_numpy()
    parent_level = np.where(level == 3, 2, np.where(level == 2, 1, 0))
    parent_id = pd.Series(np.where(level == 3, d["REGION_ID"].to_numpy(object) if "REGION_ID" in d else "",
                                   np.where(level == 2, "0000", "")), dtype=object)
    # a unit's id and a parent's id in one code space: an office's REGION_ID names its region's row
    ids = pd.factorize(pd.concat([d["ORG_STED_ID"].astype(object), parent_id], ignore_index=True))[0]
    k = pd.DataFrame({"t": pd.factorize(d[t])[0], "o": pd.factorize(d["UTFALL"])[0], "lv": level,
                      "id": ids[:len(d)], "b": pd.factorize(d["NEDBRYTNING"])[0],
                      "g": pd.factorize(d["GRUPPE"])[0], "plv": parent_level, "pid": ids[len(d):]}).take(order)
    level, parent_level = level[order], parent_level[order]
    is_group = (d["NEDBRYTNING"] != "Alle").to_numpy()[order]
    unit_key = _codes(k, ["t", "o", "lv", "id"])
    # a row as the parent of other units' rows, and a row as their child, in one key space
    as_parent = k[["t", "o", "b", "g", "lv", "id"]]
    as_child = k[["t", "o", "b", "g", "plv", "pid"]].set_axis(as_parent.columns, axis=1)
    org_keys = _codes(pd.concat([as_parent, as_child], ignore_index=True), list(as_parent.columns))
    org_parent, org_child = org_keys[:len(d)], np.where(level >= 2, org_keys[len(d):], -1)
    group_fam = np.where(is_group, _codes(k, ["t", "o", "lv", "id", "b"]), -1)
    # each kind of family: (family of a row as child, key of its parent, rows that are parents,
    # key of a row as parent); -1: not a child of this kind
    kinds = [
        # the groups of one breakdown in a unit; parent: the unit's 'Alle' cell
        (group_fam, np.where(is_group, unit_key, -1), ~is_group, unit_key),
        # offices in a region / regions in the country, same group; parent: the upper unit's cell
        (org_child, org_child, level <= 2, org_parent),
    ]
    n = d["ANTALL_PERSONER"].to_numpy()[order]
    for _ in range(50):
        changed = False
        for child_fam, child_parent_key, is_parent, parent_key in kinds:
            parent_supp = pd.Series(supp[is_parent], index=parent_key[is_parent])
            parent_supp = parent_supp[~parent_supp.index.duplicated()]
            member = child_fam >= 0
            ch = pd.DataFrame({"fam": child_fam[member], "pkey": child_parent_key[member], "supp": supp[member],
                               "n": n[member], "row": np.flatnonzero(member)})
            counts = ch.groupby("fam")["supp"].sum()
            lonely = counts[counts == 1].index
            if not len(lonely):
                continue
            cand = ch[ch["fam"].isin(lonely)]
            published_parent = ~cand["pkey"].map(parent_supp).fillna(True).astype(bool)
            cand = cand[published_parent]
            free = cand[~cand["supp"]]
            pick = free.sort_values(["fam", "n", "row"], kind="stable").groupby("fam").head(1)["row"].to_numpy()
            # a family whose only child is suppressed (the child equals the parent): suppress the parent
            no_free = set(cand["fam"]) - set(free["fam"])
            if no_free:
                keys = set(cand.loc[cand["fam"].isin(no_free), "pkey"])
                parent_rows = np.flatnonzero(is_parent & np.isin(parent_key, list(keys)) & ~supp)
                pick = np.concatenate([pick, parent_rows])
            if not len(pick):
                continue
            supp[pick] = True
            reason[pick] = SECONDARY
            changed = True
        if not changed:
            break
    supp[order], reason[order] = supp.copy(), reason.copy()  # back to the frame's own row order
    d = d.copy(deep=False)  # new columns only: the caller's frame is left as it was
    d["PRIKKET"] = supp
    d["PRIKKET_ARSAK"] = reason
    for c in SUPPRESSED_VALUES:
        if c in d.columns:
            d[c] = d[c].mask(supp)
    return d
