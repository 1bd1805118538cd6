"""The 社会保障卡 chip application (card profile, data elements, card operations).

Arrives with the chip-application work (issue 4); nothing here yet."""
