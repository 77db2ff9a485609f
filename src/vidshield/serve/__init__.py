"""The scanning service (``vidshield serve``): an HTTP API and a page over the pipeline.

- :mod:`~vidshield.serve.app`: FastAPI routers, limits, metrics, the page;
- :mod:`~vidshield.serve.jobs`: the SQLite job store, worker processes and their supervisor;
- :mod:`~vidshield.serve.upload`: streaming multipart uploads to disk;
- :mod:`~vidshield.serve.scanning`: the one function that runs a scan (:func:`run_scan`);
- ``static/``: the page (plain HTML, JS and CSS, no external asset).

Needs the ``serve`` extra (``pip install vidshield[serve]``).
"""

from vidshield.serve.app import ServeConfig, create_app
from vidshield.serve.scanning import ScanOptions, ScanSettings, run_scan

__all__ = ["ServeConfig", "create_app", "ScanSettings", "ScanOptions", "run_scan"]
