"""Real I/O behind the ports: SQL, artifact stores, model formats, host facts, notifiers."""
