"""The data the kit ships, and its generator: ``circles.npz``, made by ``python -m shared_data.generate_circles``.

This folder is the source. A wheel installs it inside the kit, as the package ``frameworks.data``
(``pyproject.toml`` maps the one onto the other), so an install adds no top-level ``shared_data``;
``frameworks._data.shipped_dir`` finds the data in either place.
"""
