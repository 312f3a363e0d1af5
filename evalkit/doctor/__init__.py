"""Checks of this machine (`machine`) and of a router's conformance to what evalkit expects
(`conformance`)."""
