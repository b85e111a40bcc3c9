"""Marshmallow schemas and fields below the web layer: the contracts every channel shares."""
