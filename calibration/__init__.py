"""Cameras: the camera model, intrinsics and extrinsics from checkerboards, importers of other formats."""
