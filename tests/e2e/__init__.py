"""End-to-end tests: the whole chain, the demo, the Debian package, the console in a browser."""
