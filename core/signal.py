"""Signal helpers shared by the stages and the analysis: the one zero-lag low-pass and the one
sub-sample refinement of a correlation peak."""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

from core.gaps import nan_runs

# scipy's own default padding of a 2nd-order filter run both ways (3 x the filter's length); a
# NaN-free run must be longer than this to be filtered when no trim is asked for.
DEFAULT_PADLEN = 9


def zero_lag_lowpass(x: np.ndarray, rate_hz: float, cutoff_hz: float, padlen: int | None = None,
                     trim: int = 0) -> np.ndarray:
    """Zero-lag low-pass: a 2nd-order Butterworth run forwards and backwards (4th order, no phase
    lag), in second-order sections, on every NaN-free run of every channel of ``x`` (samples, ...)
    on its own; missing samples stay missing. A copy of ``x`` when the cutoff is <= 0 or at or above
    the Nyquist frequency.

    padlen: odd-extension padding at each end of a run (None: scipy's default, 9 samples), capped at
    the run's length - 1.
    trim: samples set to NaN at both ends of every filtered run (filter edge transients), and runs of
    at most 2 * trim + 3 samples left NaN; with trim 0, runs of at most 9 samples are kept unfiltered.
    """
    x = np.asarray(x, float)
    if cutoff_hz <= 0 or cutoff_hz >= rate_hz / 2:
        return x.copy()
    sos = butter(2, cutoff_hz / (rate_hz / 2), output="sos")
    out = np.full_like(x, np.nan) if trim else x.copy()
    flat_in, flat_out = x.reshape(len(x), -1), out.reshape(len(x), -1)
    for j in range(flat_in.shape[1]):
        for s, e in nan_runs(~np.isfinite(flat_in[:, j])):  # runs of valid samples
            n = e - s
            if n <= (2 * trim + 3 if trim else DEFAULT_PADLEN):
                continue
            y = sosfiltfilt(sos, flat_in[s:e, j], padtype="odd", padlen=min(padlen or DEFAULT_PADLEN, n - 1))
            flat_out[s + trim:e - trim, j] = y[trim:n - trim]
    return out


def parabolic_peak(y: np.ndarray, i: int) -> tuple[float, float]:
    """Sub-sample position and height of the peak of ``y`` at index ``i`` from the parabola through
    ``y[i-1], y[i], y[i+1]``: (fraction of a step to add to i, refined height). (0, y[i]) at an end,
    next to a missing value, or where the three points do not make a peak."""
    if 0 < i < len(y) - 1 and np.isfinite(y[i - 1]) and np.isfinite(y[i + 1]):
        den = y[i - 1] - 2 * y[i] + y[i + 1]
        if den < 0:
            frac = 0.5 * (y[i - 1] - y[i + 1]) / den
            return float(frac), float(y[i] - 0.25 * (y[i - 1] - y[i + 1]) * frac)
    return 0.0, float(y[i])
