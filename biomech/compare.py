"""Compare joint angles with a reference (mocap IK, another tool's .mot): per-coordinate errors.

Both tables are resampled onto one time base (the reference's rate over the span they share), the
time shift that maximises the mean Pearson correlation of the shared coordinates is found (videos
and mocap are rarely started together), and per coordinate we report RMSE, mean absolute error,
max error, mean offset, Pearson r and range-of-motion difference. Only coordinates both tables have
are compared; the others are listed. Angles in degrees, translations in millimetres.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.signal import parabolic_peak
from biomech.ik import coordinate_name
from biomech.mot import CoordinateTable, is_translation


class CompareError(ValueError):
    """The two tables cannot be compared; the message says why and what to do."""


@dataclass
class CoordinateErrors:
    name: str
    unit: str
    rmse: float
    mae: float
    max_error: float
    offset: float
    pearson_r: float
    rom: float
    rom_ref: float
    sd_diff: float = float("nan")  # SD of the differences (ours - reference), for the limits of agreement

    @property
    def limits_of_agreement(self) -> tuple[float, float]:
        """Bland-Altman 95 % limits of agreement: bias (``offset``) -+ 1.96 SD of the differences."""
        return self.offset - 1.96 * self.sd_diff, self.offset + 1.96 * self.sd_diff

    @property
    def rom_diff(self) -> float:
        return self.rom - self.rom_ref


@dataclass
class Comparison:
    """Result of ``compare_tables``; ``time_s`` (frames,), ``ours``/``ref`` (frames, coordinates) in
    report units (deg / mm) on the common time base, after the shift."""

    shift_s: float
    shift_r: float
    coordinates: list[CoordinateErrors]
    time_s: np.ndarray
    ours: np.ndarray
    ref: np.ndarray
    only_ours: list[str] = field(default_factory=list)
    only_ref: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def table(self) -> list[dict]:
        return [
            {"coordinate": c.name, "unit": c.unit, "rmse": round(c.rmse, 2), "mae": round(c.mae, 2),
             "max_error": round(c.max_error, 2), "offset": round(c.offset, 2), "pearson_r": round(c.pearson_r, 3),
             "rom": round(c.rom, 1), "rom_ref": round(c.rom_ref, 1), "rom_diff": round(c.rom_diff, 1),
             "loa_low": round(c.limits_of_agreement[0], 2), "loa_high": round(c.limits_of_agreement[1], 2)}
            for c in self.coordinates
        ]

    def summary(self) -> dict:
        angles = [c for c in self.coordinates if c.unit == "deg"]
        return {
            "time_shift_s": round(self.shift_s, 4),
            "shift_mean_r": round(self.shift_r, 3),
            "frames_compared": int(len(self.time_s)),
            "span_s": [round(float(self.time_s[0]), 3), round(float(self.time_s[-1]), 3)] if len(self.time_s) else None,
            "mean_mae_deg": round(float(np.mean([c.mae for c in angles])), 2) if angles else None,
            "mean_rmse_deg": round(float(np.mean([c.rmse for c in angles])), 2) if angles else None,
            "coordinates": self.table(),
            "only_in_ours": self.only_ours,
            "only_in_reference": self.only_ref,
            "warnings": self.warnings,
        }


def _to_report_units(table: CoordinateTable) -> tuple[list[str], np.ndarray, list[str]]:
    names = [coordinate_name(n) or n for n in table.names]
    vals = table.values.copy()
    units = []
    for j, n in enumerate(names):
        if is_translation(n, table.translations):
            vals[:, j] *= 1000.0
            units.append("mm")
        else:
            vals[:, j] = np.degrees(vals[:, j])
            units.append("deg")
    return names, vals, units


def _interp(t: np.ndarray, src_t: np.ndarray, src: np.ndarray) -> np.ndarray:
    """(len(t), columns) linear interpolation, NaN outside ``src_t`` and where a neighbour is NaN."""
    out = np.full((len(t), src.shape[1]), np.nan)
    for j in range(src.shape[1]):
        ok = np.isfinite(src[:, j])
        if ok.sum() < 2:
            continue
        out[:, j] = np.interp(t, src_t[ok], src[ok, j], left=np.nan, right=np.nan)
    return out


def _mean_corr(a: np.ndarray, b: np.ndarray) -> float:
    rs = []
    for j in range(a.shape[1]):
        ok = np.isfinite(a[:, j]) & np.isfinite(b[:, j])
        if ok.sum() < 10:
            continue
        x, y = a[ok, j], b[ok, j]
        if np.std(x) < 1e-6 or np.std(y) < 1e-6:
            continue
        rs.append(np.corrcoef(x, y)[0, 1])
    return float(np.mean(rs)) if rs else -np.inf


def find_shift(t_ours: np.ndarray, ours: np.ndarray, t_ref: np.ndarray, ref: np.ndarray,
               max_shift_s: float, dt: float) -> tuple[float, float]:
    """Shift (s) to add to our times so our curves best match the reference, and its mean r.

    Only coordinates that move (range > 2 deg / 2 mm in both) vote, so still ones don't dilute r.
    """
    def _range(x: np.ndarray) -> float:
        x = x[np.isfinite(x)]
        return float(np.ptp(x)) if len(x) else 0.0

    moving = [j for j in range(ours.shape[1]) if _range(ours[:, j]) > 2 and _range(ref[:, j]) > 2]
    if not moving or max_shift_s <= 0:
        return 0.0, float("nan")
    ours, ref = ours[:, moving], ref[:, moving]
    shifts = np.arange(-max_shift_s, max_shift_s + dt / 2, dt)
    scores = np.full(len(shifts), -np.inf)
    for i, s in enumerate(shifts):
        o = _interp(t_ref, t_ours + s, ours)
        if np.isfinite(o).any(axis=1).sum() < 0.3 * min(len(t_ref), len(t_ours)):
            continue  # overlap too short to judge
        scores[i] = _mean_corr(o, ref)
    k = int(np.argmax(scores))
    if not np.isfinite(scores[k]):
        return 0.0, float("nan")
    frac, _ = parabolic_peak(scores, k)
    return float(shifts[k] + frac * dt), float(scores[k])


def compare_tables(ours: CoordinateTable, ref: CoordinateTable, *, max_shift_s: float,
                   rate_hz: float | None = None, coordinates: list[str] | None = None,
                   shift_coordinates: list[str] | None = None) -> Comparison:
    """Compare ``ours`` with ``ref`` (see module docstring). ``max_shift_s`` 0 disables the shift search.
    ``shift_coordinates``: the coordinates whose correlation picks the shift (None, or none of them shared:
    every moving one; poorly observed ones such as hip rotation can pull the shift off)."""
    n_o, v_o, u_o = _to_report_units(ours)
    n_r, v_r, u_r = _to_report_units(ref)
    shared = [n for n in n_o if n in n_r and (coordinates is None or n in coordinates)]
    only_ours = [n for n in n_o if n not in n_r]
    only_ref = [n for n in n_r if n not in n_o]
    if not shared:
        raise CompareError(
            f"no coordinate names in common (ours: {n_o[:6]}..., reference: {n_r[:6]}...); "
            "compare .mot files solved with models that use the same coordinate names"
        )
    io = [n_o.index(n) for n in shared]
    ir = [n_r.index(n) for n in shared]
    a, b = v_o[:, io], v_r[:, ir]
    if rate_hz is None:
        rate_hz = 1.0 / float(np.median(np.diff(ref.time_s))) if len(ref.time_s) > 1 else 100.0
    dt = 1.0 / rate_hz
    vote = [j for j, n in enumerate(shared) if shift_coordinates and n in shift_coordinates] or list(range(len(shared)))
    shift, r = find_shift(ours.time_s, a[:, vote], ref.time_s, b[:, vote], max_shift_s, dt)
    warnings = []
    if max_shift_s > 0 and np.isfinite(r) and abs(shift) >= max_shift_s - dt / 2:
        warnings.append(f"the best time shift ({shift:+.2f} s) sits at the search limit (+-{max_shift_s:g} s): the "
                        "recordings may be further apart, or not of the same movement; try a larger --max-shift, "
                        "and check both files are of the same trial")
    t0 = max(ours.time_s[0] + shift, ref.time_s[0])
    t1 = min(ours.time_s[-1] + shift, ref.time_s[-1])
    if t1 <= t0:
        raise CompareError(
            f"the two recordings do not overlap in time (ours {ours.time_s[0]:.2f}-{ours.time_s[-1]:.2f} s shifted by "
            f"{shift:.2f} s, reference {ref.time_s[0]:.2f}-{ref.time_s[-1]:.2f} s)"
        )
    t = np.arange(t0, t1 + dt / 2, dt)
    ao = _interp(t, ours.time_s + shift, a)
    bo = _interp(t, ref.time_s, b)
    coords, kept = [], []
    for j, name in enumerate(shared):
        ok = np.isfinite(ao[:, j]) & np.isfinite(bo[:, j])
        if ok.sum() < 2:
            continue
        x, y = ao[ok, j], bo[ok, j]
        e = x - y
        rr = float(np.corrcoef(x, y)[0, 1]) if np.std(x) > 1e-9 and np.std(y) > 1e-9 else float("nan")
        coords.append(CoordinateErrors(name, u_o[io[j]], float(np.sqrt(np.mean(e**2))), float(np.mean(np.abs(e))),
                                       float(np.max(np.abs(e))), float(np.mean(e)), rr,
                                       float(np.ptp(x)), float(np.ptp(y)), float(np.std(e, ddof=1))))
        kept.append(j)
    # ours/ref columns are the compared coordinates, in their order
    return Comparison(shift, r, coords, t, ao[:, kept], bo[:, kept], only_ours, only_ref, warnings)


def side_mean(errors: dict[str, dict], base: str, key: str = "mae", digits: int = 2) -> float | None:
    """The right/left mean of ``errors[f"{base}_r"][key]`` and ``errors[f"{base}_l"][key]`` (or the unsided
    ``errors[base][key]`` for the pelvis and trunk), rounded to ``digits``; None when neither is there."""
    vals = [errors[f"{base}_{s}"][key] for s in ("r", "l") if f"{base}_{s}" in errors]
    vals = vals or ([errors[base][key]] if base in errors else [])
    return round(float(np.mean(vals)), digits) if vals else None


def bland_altman(ours: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Bland-Altman statistics of paired samples (NaN pairs skipped): mean of each pair and difference
    (ours - ref) arrays, the bias (mean difference), the SD of the differences and the 95 % limits of
    agreement (bias -+ 1.96 SD). Samples of one recording are not independent: the limits describe
    this recording's frames, not a population."""
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    ok = np.isfinite(ours) & np.isfinite(ref)
    mean, diff = 0.5 * (ours[ok] + ref[ok]), ours[ok] - ref[ok]
    if len(diff) < 2:
        return {"n": int(len(diff)), "mean": mean, "diff": diff, "bias": float("nan"), "sd": float("nan"),
                "loa_low": float("nan"), "loa_high": float("nan")}
    bias, sd = float(np.mean(diff)), float(np.std(diff, ddof=1))
    return {"n": int(len(diff)), "mean": mean, "diff": diff, "bias": bias, "sd": sd,
            "loa_low": bias - 1.96 * sd, "loa_high": bias + 1.96 * sd}


def check_subject(height_m: float | None, mass_kg: float | None) -> None:
    """CompareError for a height or mass that cannot be metres / kilograms (e.g. 180 cm given as 180)."""
    if height_m is not None:
        if height_m > 3.0:
            raise CompareError(f"--height {height_m:g}: looks like centimetres (or millimetres); give metres, e.g. "
                               f"--height {height_m / 100:.2f}" if height_m < 300 else f"--height {height_m:g}: give metres, e.g. 1.75")
        if height_m < 0.5:
            raise CompareError(f"--height {height_m:g}: below 0.5 m; give the subject's height in metres, e.g. 1.75")
    if mass_kg is not None:
        if mass_kg > 500:
            raise CompareError(f"--mass {mass_kg:g}: looks like grams; give kilograms, e.g. --mass {mass_kg / 1000:.1f}")
        if mass_kg < 10:
            raise CompareError(f"--mass {mass_kg:g}: below 10 kg; give the subject's mass in kilograms, e.g. 70")


def marker_set_names(xml_path: str | Path) -> list[str]:
    """Marker names of an OpenSim marker-set (or model) .xml file."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(str(xml_path)).getroot()
    except (OSError, ET.ParseError) as exc:
        raise CompareError(f"{xml_path}: cannot read the marker set ({exc})") from None
    return [m.get("name") for m in root.iter("Marker") if m.get("name")]


def marker_coverage(trc_path: str | Path, trc_names: list[str], model_names: list[str], set_name: str) -> str | None:
    """A warning naming the model markers a mocap file lacks (None when it has them all); CompareError
    when it has none of them (wrong marker set: nothing to scale or solve with)."""
    have = set(trc_names)
    missing = [m for m in model_names if m not in have]
    if not missing:
        return None
    if len(missing) == len(model_names):
        raise CompareError(f"{trc_path}: none of the {len(model_names)} markers of {set_name} is in this file (it has "
                           f"{', '.join(trc_names[:8])}{', ...' if len(trc_names) > 8 else ''}); give the model and "
                           "marker set that match the lab's protocol with --model/--marker-set")
    shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
    return (f"{trc_path}: {len(missing)} of the {len(model_names)} markers of {set_name} are missing ({shown}); "
            "they are left out of scaling and IK, which may then be less accurate")


def write_comparison(cmp: Comparison, out_dir: str | Path, name: str = "comparison", plot: bool = True,
                     about: dict | None = None, plot_coordinates: list[str] | tuple[str, ...] | None = None) -> dict[str, Path]:
    """Write ``<name>.json`` (``cmp.summary()``, plus ``about`` under "reference": what it was compared
    against), ``<name>.csv`` and (when ``plot``) ``<name>.png`` overlays (of ``plot_coordinates``, None: all)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{name}.json", "csv": out_dir / f"{name}.csv"}
    doc = cmp.summary()
    if about is not None:
        doc["reference"] = about
    paths["json"].write_text(json.dumps(doc, indent=2, default=str) + "\n")
    rows = cmp.table()
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["coordinate"])
        w.writeheader()
        w.writerows(rows)
    if plot and cmp.coordinates:
        paths["png"] = out_dir / f"{name}.png"
        if not plot_comparison(cmp, paths["png"], plot_coordinates):
            del paths["png"]
    return paths


def plot_comparison(cmp: Comparison, path: Path, coordinates: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """Our curves over the reference's (after the time shift), one panel per coordinate: those of
    ``coordinates`` that were compared, in that order (None: all). Returns the coordinates plotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c.name for c in cmp.coordinates]
    shown = names if coordinates is None else [n for n in coordinates if n in names]
    if not shown:
        return []
    n = len(shown)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 2.3 * rows + 0.6), squeeze=False, sharex=True)
    for k, name in enumerate(shown):
        ax = axes[k // cols][k % cols]
        j = names.index(name)
        c = cmp.coordinates[j]
        ax.plot(cmp.time_s, cmp.ref[:, j], color="0.3", lw=1.6, label="reference")
        ax.plot(cmp.time_s, cmp.ours[:, j], color="tab:red", lw=1.0, label="ours")
        ax.set_title(f"{c.name} ({c.unit})  MAE {c.mae:.1f}, r {c.pearson_r:.2f}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25, lw=0.5)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    for k in range(max(0, n - cols), n):  # the lowest panel of each column
        axes[k // cols][k % cols].set_xlabel("time (s, reference clock)", fontsize=7)
        axes[k // cols][k % cols].xaxis.set_tick_params(labelbottom=True)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", fontsize=8, ncol=2, frameon=False)  # clear of the curves
    s = cmp.summary()
    fig.suptitle(f"ours shifted by {cmp.shift_s * 1000:+.0f} ms (mean r {s['shift_mean_r']}); mean MAE of all "
                 f"{len(names)} compared coordinates {s['mean_mae_deg']} deg", fontsize=9)
    top = 1 - 0.55 / fig.get_figheight()
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.45 / fig.get_figheight() + 0.02, top=top - 0.04,
                        hspace=0.45, wspace=0.22)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return shown


# The coordinates a clinician reads first (Bland-Altman plot, stage summary).
MAIN_COORDINATES = ("hip_flexion_r", "hip_flexion_l", "knee_angle_r", "knee_angle_l", "ankle_angle_r", "ankle_angle_l",
                    "pelvis_tilt", "lumbar_extension")
FLEXION_COORDINATES = MAIN_COORDINATES[:6]
# comparison.png of a run: the main coordinates and hip adduction (the knee valgus proxy).
PLOT_COORDINATES = MAIN_COORDINATES[:6] + ("hip_adduction_r", "hip_adduction_l") + MAIN_COORDINATES[6:]


def plot_bland_altman(cmp: Comparison, path: Path, coordinates: tuple[str, ...] = MAIN_COORDINATES) -> list[str]:
    """Bland-Altman plot per coordinate (those of ``coordinates`` that were compared): each frame's mean of
    ours and the reference against their difference, the bias and the 95 % limits of agreement.
    Returns the coordinates plotted (none: no file written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c.name for c in cmp.coordinates]
    shown = [n for n in coordinates if n in names]
    if not shown:
        return []
    cols = min(4, len(shown))
    rows = int(np.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.0 * rows + 0.5), squeeze=False)
    for k, name in enumerate(shown):
        ax = axes[k // cols][k % cols]
        j = names.index(name)
        c = cmp.coordinates[j]
        ba = bland_altman(cmp.ours[:, j], cmp.ref[:, j])
        ax.scatter(ba["mean"], ba["diff"], s=4, alpha=0.35, color="tab:blue", linewidths=0)
        ax.axhline(0.0, color="0.75", lw=0.8)
        for y, style, label in ((ba["bias"], "-", "bias"), (ba["loa_low"], "--", "LoA"), (ba["loa_high"], "--", "LoA")):
            if np.isfinite(y):  # labelled outside the panel, on the right, clear of the points
                ax.axhline(y, color="tab:red", ls=style, lw=1.0)
                ax.annotate(f"{label}\n{y:+.1f}", xy=(1.0, y), xycoords=("axes fraction", "data"), xytext=(3, 0),
                            textcoords="offset points", ha="left", va="center", fontsize=6.5, color="tab:red",
                            annotation_clip=False)
        lo, hi = ba["loa_low"], ba["loa_high"]
        if np.isfinite(lo) and len(ba["diff"]):
            span = max(hi - lo, float(np.ptp(ba["diff"])), 1.0)
            ymin = min(lo, float(np.min(ba["diff"])), 0.0) - 0.2 * span
            ymax = max(hi, float(np.max(ba["diff"])), 0.0) + 0.2 * span
            ax.set_ylim(ymin, ymax)
        ax.set_title(f"{name}  MAE {c.mae:.1f} {c.unit}", fontsize=8)
        ax.set_xlabel(f"mean of ours and reference ({c.unit})", fontsize=7)
        ax.set_ylabel(f"ours - reference ({c.unit})", fontsize=7)
        ax.tick_params(labelsize=7)
    for k in range(len(shown), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(f"Bland-Altman: ours - reference against their mean, {len(cmp.time_s)} frames (ours shifted by "
                 f"{cmp.shift_s * 1000:+.0f} ms)\nbias = mean difference; LoA = 95 % limits of agreement, bias -+ 1.96 SD "
                 "(frames of one recording are not independent samples)", fontsize=8)
    fig.subplots_adjust(left=0.06, right=0.96, bottom=0.55 / fig.get_figheight() + 0.01,
                        top=1 - 0.75 / fig.get_figheight(), hspace=0.6, wspace=0.42)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return shown
