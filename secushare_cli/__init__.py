"""``secushare``: send and fetch SecuShare deliveries from the command line.

This package imports no Django: only the standard library, ``requests``,
``cryptography`` and the SXF1 module ``secupass.sxf`` that the server uses too.
"""

from importlib import metadata

try:
    __version__ = metadata.version("secushare")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
