"""Database and speed-up machinery: the connection, the embedded server, group commit, recent reads, channels."""
