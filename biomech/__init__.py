"""OpenSim half of the product: file formats, models, scaling, IK, analysis."""
