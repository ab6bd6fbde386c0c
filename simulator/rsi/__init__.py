"""A simulated KUKA robot controller sending RSI datagrams over UDP."""
