"""The step engine: plan (a rehearsal on fakes), apply, journal, retry, events."""
