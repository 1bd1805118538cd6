"""Serial devices: card printer, magnetic-stripe encoder, track codec, card face.

Arrives with the serial-device work (issue 5); nothing here yet."""
