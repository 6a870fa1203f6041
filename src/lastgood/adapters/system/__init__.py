"""Host-level adapters: host facts and packages, subprocesses, the smoke runner, signing keys, the
clock and the server process runner."""
