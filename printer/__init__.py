"""Serial devices: Evolis card-printer and MSR206 encoder drivers, the ISO 7811 track codec and
the card face (docs/devices.md)."""
