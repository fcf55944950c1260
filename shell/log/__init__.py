"""The event log: its JSON codec, the writer and reader, replay, explain and drift."""
