"""Everything virtual: card operating systems, the vpcd bridge, pcscd control."""
