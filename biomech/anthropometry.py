"""Published anthropometry for a generic adult, the numbers our OpenSim model is built from.

Every length is a fraction of stature or of a pelvic dimension, so the same tables give a generic
model of any height. Sources (values as printed there, rounded where noted):

- Segment lengths and joint heights: Winter DA, *Biomechanics and Motor Control of Human Movement*,
  4th ed., Wiley 2009, Fig. 4.1 (after Drillis & Contini 1966): knee height 0.285 H, ankle height
  0.039 H, hip (greater trochanter) height 0.530 H, acromion height 0.818 H, thigh 0.245 H,
  shank 0.246 H, foot length 0.152 H, foot breadth 0.055 H, shoulder breadth 0.259 H,
  upper arm 0.186 H, forearm 0.146 H, hand 0.108 H.
- Segment masses, centres of mass and radii of gyration: de Leva P, Adjustments to
  Zatsiorsky-Seluyanov's segment inertia parameters, J Biomech 29(9):1223-1230, 1996 (male table).
- Hip joint centre in the pelvis: Harrington ME et al., Prediction of the hip joint centre in adults,
  children, and patients with cerebral palsy based on magnetic resonance imaging, J Biomech
  40(3):595-602, 2007: x = -0.24 PD - 9.9 mm, y = -0.30 PW - 10.9 mm, z = +-(0.33 PW + 7.3 mm), with
  pelvic width PW (inter-ASIS) and depth PD (mid-ASIS to mid-PSIS); their adult means PW ~ 0.245 m,
  PD ~ 0.16 m are our generic values for a 1.75 m adult, scaled with height.
- Lumbar joint centre (L5/S1) in the pelvis: Dumas R, Cheze L, Verriest JP, Adjustments to McConville
  et al. and Young et al. body segment inertial parameters, J Biomech 40(3):543-553, 2007 (male: -33.5 %,
  -3.2 % of pelvic width, from mid-ASIS).
- Ankle (talocrural) axis: Inman VT, *The Joints of the Ankle*, Williams & Wilkins 1976: about 8 deg
  from the medio-lateral line in the frontal plane (lateral end lower) and about 6 deg in the
  transverse plane (lateral end posterior).
- Subtalar axis: Inman 1976 (after Manter 1941): 42 deg up from the horizontal plane and 23 deg medial
  to the long axis of the foot.
- Ranges of motion: American Academy of Orthopaedic Surgeons, *Joint Motion: Method of Measuring and
  Recording*, 1965 (normal adult ROM), widened by 10-20 deg where squats and gait exceed them.

Where a source gives no number we need (e.g. where the subtalar joint sits in the talus, bony
landmark offsets from joint centres) the value is our own estimate from the same proportions, marked
"estimate" below; scaling and marker placement on the static trial adjust these per subject.
"""
from __future__ import annotations

from dataclasses import dataclass

GENERIC_HEIGHT_M = 1.75
GENERIC_MASS_KG = 75.0

# Winter 2009, Fig. 4.1 (fractions of stature H).
KNEE_HEIGHT = 0.285
ANKLE_HEIGHT = 0.039
HIP_HEIGHT = 0.530
ACROMION_HEIGHT = 0.818
THIGH = 0.245
SHANK = 0.246
FOOT_LENGTH = 0.152
FOOT_BREADTH = 0.055
SHOULDER_BREADTH = 0.259
UPPER_ARM = 0.186
FOREARM = 0.146
HAND = 0.108

# Harrington et al. 2007 adult means, as fractions of a 1.75 m stature.
PELVIS_WIDTH = 0.245 / 1.75
PELVIS_DEPTH = 0.160 / 1.75

# de Leva 1996 (male): mass fraction, CoM from the proximal end (fraction of segment length),
# radii of gyration (sagittal, transverse, longitudinal; fraction of segment length).
DE_LEVA = {
    "head_trunk": (0.0694 + 0.1596 + 0.1633, 0.50, (0.33, 0.31, 0.17)),  # head + upper + middle trunk
    "pelvis": (0.1117, 0.40, (0.615, 0.551, 0.587)),  # lower trunk
    "thigh": (0.1416, 0.4095, (0.329, 0.329, 0.149)),
    "shank": (0.0433, 0.4459, (0.255, 0.249, 0.103)),
    "foot": (0.0137, 0.4415, (0.257, 0.245, 0.124)),
    "upper_arm": (0.0271, 0.5772, (0.285, 0.269, 0.158)),
    "forearm": (0.0162, 0.4574, (0.276, 0.265, 0.121)),
    "hand": (0.0061, 0.7900, (0.628, 0.513, 0.401)),
}
# How the foot's mass is shared by our three foot bodies (estimate: talus small, toes ~ phalanges).
FOOT_SPLIT = {"talus": 0.10, "calcn": 0.70, "toes": 0.20}

# Joint axes, unit vectors in the parent body's frame for the RIGHT side (X anterior, Y up, Z right).
ANKLE_FRONTAL_DEG = 8.0
ANKLE_TRANSVERSE_DEG = 6.0
SUBTALAR_ELEVATION_DEG = 42.0
SUBTALAR_MEDIAL_DEG = 23.0

# Ranges of motion (deg), positive direction given by the coordinate's name (flexion, adduction,
# internal rotation, dorsiflexion, inversion, MTP flexion, extension, pronation).
ROM_DEG = {
    "hip_flexion": (-30, 140),
    "hip_adduction": (-50, 30),
    "hip_rotation": (-50, 50),
    "knee_angle": (-10, 150),
    "ankle_angle": (-50, 40),
    "subtalar_angle": (-25, 35),
    "mtp_angle": (-70, 40),
    "lumbar_extension": (-90, 40),
    "lumbar_bending": (-45, 45),
    "lumbar_rotation": (-50, 50),
    "arm_flex": (-70, 180),
    "arm_add": (-180, 60),
    "arm_rot": (-90, 90),
    "elbow_flex": (0, 155),
    "pro_sup": (-10, 180),
}


@dataclass(frozen=True)
class Dimensions:
    """Generic segment dimensions (m) for a given stature."""

    height_m: float

    def __getattr__(self, name: str) -> float:  # e.g. dims.thigh -> THIGH * height
        table = {
            "thigh": THIGH, "shank": SHANK, "foot_length": FOOT_LENGTH, "foot_breadth": FOOT_BREADTH,
            "ankle_height": ANKLE_HEIGHT, "knee_height": KNEE_HEIGHT, "hip_height": HIP_HEIGHT,
            "acromion_height": ACROMION_HEIGHT, "shoulder_breadth": SHOULDER_BREADTH,
            "upper_arm": UPPER_ARM, "forearm": FOREARM, "hand": HAND,
            "pelvis_width": PELVIS_WIDTH, "pelvis_depth": PELVIS_DEPTH,
        }
        if name in table:
            return table[name] * self.height_m
        raise AttributeError(name)

    def hip_centre(self) -> tuple[float, float, float]:
        """Right hip joint centre in the pelvis frame (origin mid-ASIS), Harrington et al. 2007."""
        pw, pd = self.pelvis_width, self.pelvis_depth
        return (-0.24 * pd - 0.0099, -0.30 * pw - 0.0109, 0.33 * pw + 0.0073)

    def lumbar_centre(self) -> tuple[float, float, float]:
        """L5/S1 in the pelvis frame, Dumas et al. 2007."""
        pw = self.pelvis_width
        return (-0.335 * pw, -0.032 * pw, 0.0)
