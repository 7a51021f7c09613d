"""daskfleet: deploy and keep Dask clusters on machines you already own."""

from daskfleet.errors import DaskfleetError

__version__ = "0.1.0"
__all__ = ["DaskfleetError", "__version__"]
