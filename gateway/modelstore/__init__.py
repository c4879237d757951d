"""The model store: a catalog of public detectors, downloads, imports and verification."""
