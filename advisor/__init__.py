"""Resource-fit advisor for machine learning on high-throughput GPU pools."""

__version__ = "0.1.0"
