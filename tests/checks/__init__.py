"""Checks on the project itself: static checks and the allowed import directions."""
