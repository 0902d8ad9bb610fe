"""Ground layer: what several layers share (video reading, keypoint names and body size, trajectory gaps,
the zero-lag low-pass and peak refinement, exit codes, verdict levels). Imports nothing of the product."""
