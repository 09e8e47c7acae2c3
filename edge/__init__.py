"""Gateway agent that runs on the Raspberry Pi in a resident's home."""
