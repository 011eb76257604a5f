"""The library operating system: TCP/IP (:mod:`sw.libos.net`) and the event interface
(:mod:`sw.libos.events`) that applications build servers on."""
