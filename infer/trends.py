"""Corpus aggregation: the share of sentences carrying each frame per period, with
Wilson 95% intervals, and a centred moving average for plotting."""
from __future__ import annotations

from typing import Sequence

import numpy as np

Z95 = 1.959963984540054


def wilson_interval(successes: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval: well-behaved at shares near 0 or 1 and for small n."""
    successes, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    safe = np.maximum(n, 1)
    p = successes / safe
    centre = (p + z * z / (2 * safe)) / (1 + z * z / safe)
    half = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe)) / (1 + z * z / safe)
    return np.where(n > 0, centre - half, 0.0), np.where(n > 0, centre + half, 1.0)


def frame_shares(df, labels: Sequence[str], by: str = "month", date_field: str = "date",
                 labels_field: str = "labels"):
    """One row per period: n sentences, and for each label its count, share, and Wilson CI.

    ``df`` is a pandas DataFrame with a date column and a column of label lists
    (as ``framing predict`` writes them). ``by`` is 'day', 'week', 'month' or 'year'.
    """
    import pandas as pd

    freq = {"day": "D", "week": "W", "month": "M", "year": "Y"}
    if by not in freq:
        raise ValueError(f"by must be one of {list(freq)}, got {by!r}")
    if date_field not in df or labels_field not in df:
        raise ValueError(f"expected columns {date_field!r} and {labels_field!r}, found {list(df.columns)}")
    dates = pd.to_datetime(df[date_field], errors="coerce")
    if dates.isna().any():
        raise ValueError(f"{int(dates.isna().sum())} row(s) have a missing or unreadable {date_field!r}")
    periods = dates.dt.to_period(freq[by]).dt.start_time
    hits = pd.DataFrame({l: df[labels_field].map(lambda ls, l=l: l in ls) for l in labels})
    hits["period"] = periods.values
    grouped = hits.groupby("period")
    out = pd.DataFrame({"n": grouped.size()})
    for label in labels:
        count = grouped[label].sum()
        lo, hi = wilson_interval(count.values, out["n"].values)
        out[f"{label}_count"] = count.values
        out[f"{label}_share"] = count.values / out["n"].values
        out[f"{label}_lo"], out[f"{label}_hi"] = lo, hi
    return out.reset_index()


def smoothed(values, window: int = 3):
    """Centred moving average (window in periods), shrinking at the ends instead of dropping them."""
    import pandas as pd

    return pd.Series(values).rolling(window, center=True, min_periods=1).mean().to_numpy()
