"""Tests of ``samforge segment --propagate``."""
