"""Platform profiles: the hardware facts and per-operation costs of each simulated machine.

Every number in a profile is a :class:`Cost` that carries its source: a row of
``docs/calibration.md`` (a copy of the design's CALIBRATION.md, extended with the rows the
profiles derive or estimate) or ``"estimate: <reasoning>"``. :mod:`sim.platforms.derived`
gives the DECstation 5000/125's profiles with another CPU clock or memory cycle, by name.
"""
from .base import Cost, Platform, PROFILES, profile_table
from .decstation import DECSTATION_5000_125_AEGIS, DECSTATION_5000_125_ULTRIX43, DECSTATION_5000_200_ULTRIX
from .ultrix_costs import ULTRIX_SOFTWARE
from . import derived
from .clients import CLIENT_PENTIUM100_OPENBSD

__all__ = [
    "Cost",
    "Platform",
    "PROFILES",
    "profile_table",
    "DECSTATION_5000_125_AEGIS",
    "DECSTATION_5000_125_ULTRIX43",
    "DECSTATION_5000_200_ULTRIX",
    "ULTRIX_SOFTWARE",
    "CLIENT_PENTIUM100_OPENBSD",
]
