"""Applications beside the web server: each runs in an environment of its own on an Aegis
machine and gets only the frames its filters claim (:mod:`sw.apps.udp_echo`)."""
from .udp_echo import ECHO_PORT, UdpEcho

__all__ = ["ECHO_PORT", "UdpEcho"]
