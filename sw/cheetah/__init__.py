"""Cheetah, the exokernel's web server (SYSTEM.md section 5), with every specialization
switchable (:class:`CheetahConfig`) and the paper's build stages (:data:`STAGES`, :func:`stage`)."""
from .config import APP_COSTS, SPECIALIZATIONS, STAGES, CheetahConfig, stage
from .server import CheetahServer, Document, http_date, make_server

__all__ = ["make_server", "CheetahConfig", "CheetahServer", "Document", "STAGES",
           "SPECIALIZATIONS", "stage", "APP_COSTS", "http_date"]
