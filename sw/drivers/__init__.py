"""Device drivers shared by the exokernel and the Ultrix model.

Drivers talk to their cards only through :class:`sim.bus.Bus` (charged to the CPU with
:meth:`sim.cpu.CPU.load` / :meth:`~sim.cpu.CPU.store` and their block forms) and the cards'
register maps (``hw.<device>.registers``), so one driver runs over a device's model and its RTL.

Modules
-------
lance
    The LANCE-style Ethernet card: ring set-up, transmit, interrupt handling, receive.
"""
