"""Everything virtual: card operating systems (generic, 社保卡, PSAM), the card factory, the
vpcd bridge and pcscd control, printer and encoder emulators on ptys, the simulated station."""
