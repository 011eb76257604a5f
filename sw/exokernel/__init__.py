"""The Aegis-like exokernel: secure bindings for pages, disk blocks, time slices and the
network (merged packet filters), and application-specific safe handlers (ASHs)."""
from .aegis import Aegis, BindingError, Delivery, DiskAccessError, Environment, ExtentTable, OutOfPages
from .ash import Ash, AshAbort, AshOutcome, AshRefused, echo_program, verify
from .filters import (Atom, DemuxResult, Filter, FilterConflict, FilterError, FilterTable,
                      LinearFilterTable, ethertype_filter, tcp_filter, udp_filter)

__all__ = ["Aegis", "BindingError", "Delivery", "DiskAccessError", "Environment", "ExtentTable",
           "OutOfPages", "Ash", "AshAbort", "AshOutcome", "AshRefused", "echo_program", "verify",
           "Atom", "DemuxResult", "Filter", "FilterConflict", "FilterError", "FilterTable",
           "LinearFilterTable", "ethertype_filter", "tcp_filter", "udp_filter"]
