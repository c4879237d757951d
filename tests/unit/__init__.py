"""Unit tests, one folder per package: in-process, no servers, no child processes."""
