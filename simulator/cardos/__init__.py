"""The card operating systems of the simulator: the generic ISO 7816 core and personalities."""
