"""Emulated LAN devices for the non-Victron drivers, written from the vendors' documentation
(``reference/devices.md`` §2.1-2.4), not from the drivers: Marstek Venus units over real UDP
sockets, a HomeWizard P1 and Shelly meters and an OpenDTU gateway over a real loopback HTTP
server, all around one home whose physics is :func:`executor.plant.step`."""
