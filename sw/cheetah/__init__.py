"""Cheetah, the exokernel's web server (SYSTEM.md section 5), with every specialization
switchable (:class:`CheetahConfig`), the paper's build stages (:data:`STAGES`, :func:`stage`)
and those beyond it (:data:`LATER_STAGES`)."""
from .config import (ALL_STAGES, APP_COSTS, LATER_SPECIALIZATIONS, LATER_STAGES, SPECIALIZATIONS,
                     STAGES, CheetahConfig, stage, variant)
from .server import CheetahServer, Document, http_date, make_server

__all__ = ["make_server", "CheetahConfig", "CheetahServer", "Document", "STAGES",
           "SPECIALIZATIONS", "LATER_SPECIALIZATIONS", "LATER_STAGES", "ALL_STAGES", "stage",
           "variant", "APP_COSTS", "http_date"]
