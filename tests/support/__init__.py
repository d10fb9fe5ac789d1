"""Servers, fakes and builders the tests share; test modules import their public names."""
