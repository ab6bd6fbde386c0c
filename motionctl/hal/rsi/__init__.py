"""The KUKA RSI backend: Ethernet RSI datagrams over UDP (docs/kuka-rsi.md)."""
