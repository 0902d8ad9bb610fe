"""Learned models: 2D pose backends and the LSTM marker augmenter."""
