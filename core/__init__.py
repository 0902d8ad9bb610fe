"""Ground layer: what several layers share (video reading, keypoint names and body size, trajectory gaps,
zero-lag filtering and lag search). Imports nothing of the product."""
