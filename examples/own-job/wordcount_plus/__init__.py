"""A user's own PyFlink job, outside Eddyline's jobs/: it counts words by their slug."""
