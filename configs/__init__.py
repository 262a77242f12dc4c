"""Packaged YAML configuration files (``tiling.yaml``, ...), read with :func:`liposcope.config.load_yaml`."""
